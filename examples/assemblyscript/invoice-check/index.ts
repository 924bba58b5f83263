// invoice-check: validates an invoice annotation (see conformance/README.md).
//
// Required fields must have a value, amount_total must be a number no greater than
// max_total, and the currency code is trimmed and upper-cased. A WASI command (asc with the
// WASI shim): the hook payload on stdin, the response on stdout, log lines on stderr, exit
// status 1 with the reason on stderr when the call fails.

import { JSON } from "assemblyscript-json/assembly";
import { fail, quote, readPayload, stringOr } from "../common/call";

/** The tree's datapoints, depth first, in order. */
function collect(nodes: JSON.Value | null, out: Array<JSON.Obj>): void {
  if (nodes === null || !nodes.isArr) {
    fail("annotation.content (or a node's children) is not a list");
    return;
  }
  const items = changetype<JSON.Arr>(nodes).valueOf();
  for (let i = 0; i < items.length; i++) {
    if (!items[i].isObj) continue;
    const node = changetype<JSON.Obj>(items[i]);
    if (node.has("children")) {
      collect(node.getValue("children"), out);
    } else if (stringOr(node, "category", "") == "datapoint") {
      out.push(node);
    }
  }
}

function find(datapoints: Array<JSON.Obj>, schemaId: string): JSON.Obj | null {
  for (let i = 0; i < datapoints.length; i++) {
    if (stringOr(datapoints[i], "schema_id", "\u0000") == schemaId) return datapoints[i];
  }
  return null;
}

/** The datapoint's content.value, or `fallback` when it has none. */
function valueOr(datapoint: JSON.Obj, fallback: string): string {
  return stringOr(datapoint.getObj("content"), "value", fallback);
}

function hasValue(datapoint: JSON.Obj): bool {
  const content = datapoint.getObj("content");
  return content !== null && content.getString("value") !== null;
}

/** The datapoint's id as JSON text. */
function idOf(datapoint: JSON.Obj): string {
  const id = datapoint.getValue("id");
  return id === null ? "null" : id.stringify();
}

function isSpace(code: i32): bool {
  return code == 0x20 || (code >= 0x09 && code <= 0x0d);
}

function trim(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return text.substring(start, end);
}

function allDigits(text: string): bool {
  if (text.length == 0) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}

/** -?[0-9]+(\.[0-9]+)? */
function isNumber(text: string): bool {
  const digits = text.startsWith("-") ? text.substring(1) : text;
  const dot = digits.indexOf(".");
  if (dot < 0) return allDigits(digits);
  return allDigits(digits.substring(0, dot)) && allDigits(digits.substring(dot + 1));
}

/** Whether a number (as isNumber accepts) is greater than `max`, exactly. */
function exceeds(number: string, max: i64): bool {
  const negative = number.startsWith("-");
  const magnitude = negative ? number.substring(1) : number;
  const dot = magnitude.indexOf(".");
  let whole = dot < 0 ? magnitude : magnitude.substring(0, dot);
  let fractional = false;
  if (dot >= 0) {
    const fraction = magnitude.substring(dot + 1);
    for (let i = 0; i < fraction.length; i++) if (fraction.charCodeAt(i) != 0x30) fractional = true;
  }
  while (whole.length > 1 && whole.charCodeAt(0) == 0x30) whole = whole.substring(1);
  // More digits than an i64 holds: far beyond any i64 in either direction.
  if (whole.length > 18) return !negative;
  const int = I64.parseInt(whole, 10);
  // -(int + f) > max  <=>  int < -max, for 0 <= f < 1 (as i128 would; -max fits unless
  // max is i64's minimum, which every 18-digit int exceeds).
  if (negative) return max == i64.MIN_VALUE ? true : int < -max;
  return int > max || (int == max && fractional);
}

function message(type: string, content: string, id: string | null): string {
  let text = '{"type":' + quote(type) + ',"content":' + quote(content);
  if (id !== null) text += ',"id":' + id;
  return text + "}";
}

/** The payload's annotation.content, or null when it has none. */
function annotationContent(payload: JSON.Obj): JSON.Value | null {
  const annotation = payload.getObj("annotation");
  if (annotation === null) return null;
  const content = annotation.getValue("content");
  if (content === null || content.isNull) return null;
  return content;
}

/** The settings' array `key`, or null. */
function arrayOf(settings: JSON.Obj | null, key: string): JSON.Arr | null {
  if (settings === null) return null;
  return settings.getArr(key);
}

/** The settings' integer `key`, or null. */
function integerOf(settings: JSON.Obj | null, key: string): JSON.Integer | null {
  if (settings === null) return null;
  return settings.getInteger(key);
}

function main(): void {
  const payload = readPayload();
  const settings = payload.getObj("settings");
  const content = annotationContent(payload);
  if (content === null) fail("the payload has no annotation.content");
  const datapoints = new Array<JSON.Obj>();
  collect(content, datapoints);

  const messages = new Array<string>();
  const operations = new Array<string>();

  const required = arrayOf(settings, "required");
  if (required !== null) {
    const items = required.valueOf();
    for (let i = 0; i < items.length; i++) {
      if (!items[i].isString) continue;
      const schemaId = changetype<JSON.Str>(items[i]).valueOf();
      const found = find(datapoints, schemaId);
      if (found === null) {
        messages.push(message("error", schemaId + " is required", null));
      } else if (trim(valueOr(found, "")).length == 0) {
        messages.push(message("error", schemaId + " is required", idOf(found)));
      }
    }
  }

  const maxTotal = integerOf(settings, "max_total");
  const total = find(datapoints, "amount_total");
  if (maxTotal !== null && total !== null) {
    const normalized = valueOr(total, "").replaceAll(" ", "").replaceAll(",", ".");
    const max = maxTotal.valueOf();
    if (!isNumber(normalized)) {
      messages.push(message("error", "amount_total is not a number", idOf(total)));
    } else if (exceeds(normalized, max)) {
      messages.push(message("warning", "amount_total exceeds " + max.toString(), idOf(total)));
    }
  }

  const currencyField = stringOr(settings, "currency_field", "\u0000");
  if (currencyField != "\u0000") {
    for (let i = 0; i < datapoints.length; i++) {
      const datapoint = datapoints[i];
      if (stringOr(datapoint, "schema_id", "\u0000") != currencyField || !hasValue(datapoint)) continue;
      const value = valueOr(datapoint, "");
      const trimmed = trim(value);
      let upper = "";
      for (let j = 0; j < trimmed.length; j++) {
        const code = trimmed.charCodeAt(j);
        upper += String.fromCharCode(code >= 0x61 && code <= 0x7a ? code - 0x20 : code);
      }
      if (upper != value) {
        operations.push(
          '{"op":"replace","id":' + idOf(datapoint) + ',"value":{"content":{"value":' + quote(upper) + "}}}",
        );
      }
    }
  }

  process.stderr.write("checked " + datapoints.length.toString() + " datapoints\n");
  process.stdout.write('{"messages":[' + messages.join(",") + '],"operations":[' + operations.join(",") + "]}");
}

main();
