// What every AssemblyScript example does around its handler: read the payload from stdin,
// write the response to stdout, and fail with the reason on stderr and exit status 1 (the
// host records the call as failed). The WASI shim provides `process`.

import { JSON } from "assemblyscript-json/assembly";

/** Reads stdin to its end and parses it as a JSON object; fails the call otherwise. */
export function readPayload(): JSON.Obj {
  const chunks = new Array<Uint8Array>();
  let length = 0;
  for (;;) {
    const buffer = new ArrayBuffer(65536);
    const got = process.stdin.read(buffer);
    if (got <= 0) break;
    chunks.push(Uint8Array.wrap(buffer, 0, got));
    length += got;
  }
  const input = new Uint8Array(length);
  let offset = 0;
  for (let i = 0; i < chunks.length; i++) {
    input.set(chunks[i], offset);
    offset += chunks[i].length;
  }
  const payload = JSON.parse(input);
  if (!payload.isObj) fail("the payload on stdin is not a JSON object");
  return changetype<JSON.Obj>(payload);
}

/** Writes "error: <reason>" to stderr and exits 1. */
export function fail(reason: string): void {
  process.stderr.write("error: " + reason + "\n");
  process.exit(1);
}

/** A string member of an object, or `fallback` when it is missing or not a string. */
export function stringOr(object: JSON.Obj | null, key: string, fallback: string): string {
  if (object === null) return fallback;
  const value = object.getString(key);
  if (value === null) return fallback;
  return value.valueOf();
}

/** `text` as a JSON string literal. */
export function quote(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code == 0x22) out += '\\"';
    else if (code == 0x5c) out += "\\\\";
    else if (code == 0x0a) out += "\\n";
    else if (code == 0x0d) out += "\\r";
    else if (code == 0x09) out += "\\t";
    else if (code < 0x20) out += "\\u00" + (code < 0x10 ? "0" : "") + code.toString(16);
    else out += String.fromCharCode(code);
  }
  return out + '"';
}
