//! invoice-check: validates an invoice annotation (see conformance/README.md).
//!
//! Required fields must have a value, `amount_total` must be a number no greater than
//! `max_total`, and the currency code is trimmed and upper-cased. A WASI command
//! (`zig build-exe -target wasm32-wasi`): the hook payload on stdin, the response on stdout,
//! log lines on stderr, exit status 1 with the reason on stderr when the call fails.

const std = @import("std");
const Value = std.json.Value;
const ObjectMap = std.json.ObjectMap;

const Message = struct {
    type: []const u8,
    content: []const u8,
    id: ?Value = null,

    /// Leaves `id` out when there is none, as the specification's messages do.
    pub fn jsonStringify(self: Message, writer: anytype) !void {
        try writer.beginObject();
        try writer.objectField("type");
        try writer.write(self.type);
        try writer.objectField("content");
        try writer.write(self.content);
        if (self.id) |id| {
            try writer.objectField("id");
            try writer.write(id);
        }
        try writer.endObject();
    }
};

const Operation = struct {
    op: []const u8 = "replace",
    id: Value,
    value: struct { content: struct { value: []const u8 } },
};

pub fn main(init: std.process.Init) !void {
    const io = init.io;
    const arena = init.arena.allocator();

    var buffer: [4096]u8 = undefined;
    var stdin = std.Io.File.stdin().readerStreaming(io, &buffer);
    const input = try stdin.interface.allocRemaining(arena, .unlimited);
    const parsed = std.json.parseFromSliceLeaky(Value, arena, input, .{}) catch |err| {
        return fail(io, "the payload on stdin is not JSON: {t}", .{err});
    };
    const payload = object(parsed) orelse return fail(io, "the payload on stdin is not a JSON object", .{});
    const settings = object(payload.get("settings")) orelse ObjectMap.empty;
    const annotation = object(payload.get("annotation")) orelse
        return fail(io, "the payload has no annotation.content", .{});
    const content = annotation.get("content") orelse
        return fail(io, "the payload has no annotation.content", .{});
    if (content == .null) return fail(io, "the payload has no annotation.content", .{});

    var datapoints: std.ArrayList(ObjectMap) = .empty;
    collect(arena, content, &datapoints) catch |err| switch (err) {
        error.NotAList => return fail(io, "annotation.content (or a node's children) is not a list", .{}),
        else => return err,
    };

    var messages: std.ArrayList(Message) = .empty;
    var operations: std.ArrayList(Operation) = .empty;

    if (settings.get("required")) |required| if (required == .array) for (required.array.items) |item| {
        if (item != .string) continue;
        const schema_id = item.string;
        const content_text = try std.fmt.allocPrint(arena, "{s} is required", .{schema_id});
        if (find(datapoints.items, schema_id)) |found| {
            const value = valueOf(found) orelse "";
            if (std.mem.trim(u8, value, &std.ascii.whitespace).len == 0) {
                try messages.append(arena, .{ .type = "error", .content = content_text, .id = found.get("id") });
            }
        } else {
            try messages.append(arena, .{ .type = "error", .content = content_text });
        }
    };

    if (settings.get("max_total")) |max_value| if (max_value == .integer) {
        const max_total = max_value.integer;
        if (find(datapoints.items, "amount_total")) |total| {
            var normalized: std.ArrayList(u8) = .empty;
            for (valueOf(total) orelse "") |byte| switch (byte) {
                ' ' => {},
                ',' => try normalized.append(arena, '.'),
                else => try normalized.append(arena, byte),
            };
            if (!isNumber(normalized.items)) {
                try messages.append(arena, .{ .type = "error", .content = "amount_total is not a number", .id = total.get("id") });
            } else if (exceeds(normalized.items, max_total)) {
                const text = try std.fmt.allocPrint(arena, "amount_total exceeds {d}", .{max_total});
                try messages.append(arena, .{ .type = "warning", .content = text, .id = total.get("id") });
            }
        }
    };

    if (settings.get("currency_field")) |field| if (field == .string) for (datapoints.items) |datapoint| {
        const schema_id = datapoint.get("schema_id") orelse continue;
        if (schema_id != .string or !std.mem.eql(u8, schema_id.string, field.string)) continue;
        const value = valueOf(datapoint) orelse continue;
        const trimmed = std.mem.trim(u8, value, &std.ascii.whitespace);
        const upper = try std.ascii.allocUpperString(arena, trimmed);
        if (!std.mem.eql(u8, upper, value)) {
            try operations.append(arena, .{
                .id = datapoint.get("id") orelse .null,
                .value = .{ .content = .{ .value = upper } },
            });
        }
    };

    const line = try std.fmt.allocPrint(arena, "checked {d} datapoints\n", .{datapoints.items.len});
    try std.Io.File.stderr().writeStreamingAll(io, line);
    const response = .{ .messages = messages.items, .operations = operations.items };
    const json = try std.json.Stringify.valueAlloc(arena, response, .{});
    try std.Io.File.stdout().writeStreamingAll(io, json);
}

/// Walks the tree depth first, in order, appending its datapoints.
fn collect(arena: std.mem.Allocator, nodes: Value, out: *std.ArrayList(ObjectMap)) !void {
    if (nodes != .array) return error.NotAList;
    for (nodes.array.items) |item| {
        const node = object(item) orelse continue;
        if (node.get("children")) |children| {
            try collect(arena, children, out);
        } else if (node.get("category")) |category| {
            if (category == .string and std.mem.eql(u8, category.string, "datapoint")) {
                try out.append(arena, node);
            }
        }
    }
}

fn object(value: ?Value) ?ObjectMap {
    const present = value orelse return null;
    return if (present == .object) present.object else null;
}

fn find(datapoints: []const ObjectMap, schema_id: []const u8) ?ObjectMap {
    for (datapoints) |datapoint| {
        const id = datapoint.get("schema_id") orelse continue;
        if (id == .string and std.mem.eql(u8, id.string, schema_id)) return datapoint;
    }
    return null;
}

/// The datapoint's `content.value` when it is a string.
fn valueOf(datapoint: ObjectMap) ?[]const u8 {
    const content = object(datapoint.get("content")) orelse return null;
    const value = content.get("value") orelse return null;
    return if (value == .string) value.string else null;
}

/// `-?[0-9]+(\.[0-9]+)?`
fn isNumber(text: []const u8) bool {
    const digits = if (std.mem.startsWith(u8, text, "-")) text[1..] else text;
    var parts = std.mem.splitScalar(u8, digits, '.');
    const int = parts.first();
    const frac = parts.next();
    if (parts.next() != null) return false;
    return allDigits(int) and (frac == null or allDigits(frac.?));
}

fn allDigits(text: []const u8) bool {
    if (text.len == 0) return false;
    for (text) |byte| if (!std.ascii.isDigit(byte)) return false;
    return true;
}

/// Whether a number (as `isNumber` accepts) is greater than `max`, exactly.
fn exceeds(number: []const u8, max: i64) bool {
    const negative = std.mem.startsWith(u8, number, "-");
    const magnitude = if (negative) number[1..] else number;
    const dot = std.mem.indexOfScalar(u8, magnitude, '.');
    const int_text = std.mem.trimStart(u8, if (dot) |at| magnitude[0..at] else magnitude, "0");
    const fractional = if (dot) |at| std.mem.indexOfNone(u8, magnitude[at + 1 ..], "0") != null else false;
    // More digits than an i128 holds: far beyond any i64 in either direction.
    const int: i128 = if (int_text.len == 0) 0 else std.fmt.parseInt(i128, int_text, 10) catch return !negative;
    const limit: i128 = max;
    // -(int + f) > max  <=>  int < -max, for 0 <= f < 1.
    return if (negative) int < -limit else int > limit or (int == limit and fractional);
}

/// Writes the reason to stderr and exits 1: the host records the call as failed.
fn fail(io: std.Io, comptime format: []const u8, args: anytype) noreturn {
    var buffer: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buffer, "error: " ++ format ++ "\n", args) catch "error: the call failed\n";
    std.Io.File.stderr().writeStreamingAll(io, line) catch {};
    std.process.exit(1);
}
