// hello: answers every event with a greeting (see conformance/README.md).
//
// Built into a component of the `extension` world with componentize-js; build.sh says how.

import { log } from "wasmhook:extension/host@0.1.0";

function check(request) {
  const settings = JSON.parse(request.settings);
  const greeting = settings.greeting ?? "Hello";
  log("info", greeting);
  return JSON.stringify({
    messages: [{ type: "info", content: `${greeting}, ${request.event}.${request.action}!` }],
    operations: [],
  });
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
