// invoice-check: validates an invoice annotation (see conformance/README.md).
//
// Required fields must have a value, `amount_total` must be a number no greater than
// `max_total`, and the currency code is trimmed and upper-cased. A thrown Error becomes the
// call's failure message.

import { log } from "wasmhook:extension/host@0.1.0";

const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;

// The tree's datapoints, depth first, in order.
function collectDatapoints(nodes, out) {
  if (!Array.isArray(nodes)) {
    throw new Error("annotation.content (or a node's children) is not a list");
  }
  for (const node of nodes) {
    if (node !== null && typeof node === "object" && "children" in node) {
      collectDatapoints(node.children, out);
    } else if (node?.category === "datapoint") {
      out.push(node);
    }
  }
  return out;
}

function valueOf(datapoint) {
  const value = datapoint.content?.value;
  return typeof value === "string" ? value : null;
}

// Whether the decimal text `number` (as NUMBER accepts) is greater than the integer `max`,
// exactly: compares digit strings rather than floats, so 9007199254740993 > 9007199254740992.
function exceeds(number, max) {
  const negative = number.startsWith("-");
  const [int, frac = ""] = (negative ? number.slice(1) : number).split(".");
  const whole = BigInt(int);
  const limit = BigInt(max);
  if (negative) {
    // -(whole + f) > limit  <=>  whole + f < -limit  <=>  whole < -limit, for 0 <= f < 1.
    return whole < -limit;
  }
  return whole > limit || (whole === limit && /[1-9]/.test(frac));
}

// Upper-cases ASCII letters only, as the specification asks.
function asciiUpper(text) {
  return text.replace(/[a-z]/g, (letter) => letter.toUpperCase());
}

function check(request) {
  const settings = JSON.parse(request.settings);
  const payload = JSON.parse(request.payload);
  const content = payload.annotation?.content;
  if (content === undefined || content === null) {
    throw new Error("the payload has no annotation.content");
  }
  const datapoints = collectDatapoints(content, []);
  const messages = [];
  const operations = [];

  for (const schemaId of settings.required ?? []) {
    const found = datapoints.find((d) => d.schema_id === schemaId);
    if (found === undefined) {
      messages.push({ type: "error", content: `${schemaId} is required` });
    } else if ((valueOf(found) ?? "").trim() === "") {
      messages.push({ type: "error", content: `${schemaId} is required`, id: found.id });
    }
  }

  const maxTotal = settings.max_total;
  const total = datapoints.find((d) => d.schema_id === "amount_total");
  if (maxTotal !== undefined && maxTotal !== null && total !== undefined) {
    const normalized = (valueOf(total) ?? "").replaceAll(" ", "").replaceAll(",", ".");
    if (!NUMBER.test(normalized)) {
      messages.push({ type: "error", content: "amount_total is not a number", id: total.id });
    } else if (exceeds(normalized, maxTotal)) {
      messages.push({ type: "warning", content: `amount_total exceeds ${maxTotal}`, id: total.id });
    }
  }

  const currencyField = settings.currency_field;
  for (const datapoint of datapoints) {
    const value = valueOf(datapoint);
    if (currencyField === undefined || datapoint.schema_id !== currencyField || value === null) {
      continue;
    }
    const normalized = asciiUpper(value.trim());
    if (normalized !== value) {
      operations.push({ op: "replace", id: datapoint.id, value: { content: { value: normalized } } });
    }
  }

  log("info", `checked ${datapoints.length} datapoints`);
  return JSON.stringify({ messages, operations });
}

// componentize-js makes a thrown value the call's `err`, which must be a string: errors are
// turned into their message here, with the stack in the run log.
export function handle(request) {
  try {
    return check(request);
  } catch (error) {
    if (error instanceof Error) {
      log("error", error.stack ?? "");
      throw `${error.name}: ${error.message}`;
    }
    throw String(error);
  }
}
