// hello: answers every event with a greeting (see conformance/README.md).
//
// A WASI command (asc with the WASI shim): the hook payload on stdin, the response on
// stdout, log lines on stderr, exit status 1 with the reason on stderr when the call fails.

import { quote, readPayload, stringOr } from "../common/call";

const payload = readPayload();
const greeting = stringOr(payload.getObj("settings"), "greeting", "Hello");
const event = stringOr(payload, "event", "");
const action = stringOr(payload, "action", "");

process.stderr.write(greeting + "\n");
const content = greeting + ", " + event + "." + action + "!";
process.stdout.write('{"messages":[{"type":"info","content":' + quote(content) + '}],"operations":[]}');
