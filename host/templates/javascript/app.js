// {{name}}: a wasmhook extension. It answers every event with a greeting; change `check`
// to do your work. `wasmhook run` calls it locally as a hook would.

import { log } from "wasmhook:extension/host@0.1.0";

// One hook call: `request.payload` is the whole payload as JSON text (Rossum's shape),
// `request.settings` the hook's settings. Return the response as JSON text; throw an Error
// to fail the call with its message (and its stack in the run log).
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
