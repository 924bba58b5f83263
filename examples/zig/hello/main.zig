//! hello: answers every event with a greeting (see conformance/README.md).
//!
//! A WASI command (`zig build-exe -target wasm32-wasi`): the hook payload on stdin, the
//! response on stdout, log lines on stderr, exit status 1 with the reason on stderr when the
//! call fails.

const std = @import("std");

const Message = struct { type: []const u8, content: []const u8 };
const Operation = struct {};

pub fn main(init: std.process.Init) !void {
    const io = init.io;
    const arena = init.arena.allocator();

    var buffer: [4096]u8 = undefined;
    var stdin = std.Io.File.stdin().readerStreaming(io, &buffer);
    const input = try stdin.interface.allocRemaining(arena, .unlimited);
    const parsed = std.json.parseFromSliceLeaky(std.json.Value, arena, input, .{}) catch |err| {
        return fail(io, "the payload on stdin is not JSON: {t}", .{err});
    };
    if (parsed != .object) return fail(io, "the payload on stdin is not a JSON object", .{});
    const payload = parsed.object;

    var greeting: []const u8 = "Hello";
    if (payload.get("settings")) |settings| {
        if (settings == .object) {
            if (settings.object.get("greeting")) |value| {
                if (value == .string) greeting = value.string;
            }
        }
    }
    const event = text(payload, "event");
    const action = text(payload, "action");

    try std.Io.File.stderr().writeStreamingAll(io, try std.fmt.allocPrint(arena, "{s}\n", .{greeting}));
    const content = try std.fmt.allocPrint(arena, "{s}, {s}.{s}!", .{ greeting, event, action });
    const response = .{
        .messages = &[_]Message{.{ .type = "info", .content = content }},
        .operations = &[_]Operation{},
    };
    const json = try std.json.Stringify.valueAlloc(arena, response, .{});
    try std.Io.File.stdout().writeStreamingAll(io, json);
}

/// A string member of an object, or "" when it is missing or not a string.
fn text(object: std.json.ObjectMap, key: []const u8) []const u8 {
    const value = object.get(key) orelse return "";
    return if (value == .string) value.string else "";
}

/// Writes the reason to stderr and exits 1: the host records the call as failed.
fn fail(io: std.Io, comptime format: []const u8, args: anytype) noreturn {
    var buffer: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buffer, "error: " ++ format ++ "\n", args) catch "error: the call failed\n";
    std.Io.File.stderr().writeStreamingAll(io, line) catch {};
    std.process.exit(1);
}
