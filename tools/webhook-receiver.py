#!/usr/bin/env python3
"""A webhook receiver to point a wasmhook (or Rossum) webhook hook at, by hand.

It checks the X-Rossum-Signature-SHA256 header against the shared secret, the way Rossum's
documentation tells receivers to, prints what arrived, and answers with a message:

    python3 tools/webhook-receiver.py --port 9000 --secret my-webhook-secret

--fail N answers 503 to the first N calls (to watch retries); --async answers 202 with a
Location, which answers 202 to the first poll and 201 with the result to the next (Rossum's
async protocol). Standard library only.
"""

import argparse
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=None, help="the hook's config.secret")
    parser.add_argument("--fail", type=int, default=0, help="answer 503 to the first N calls")
    parser.add_argument("--async", dest="asynchronous", action="store_true",
                        help="answer 202 + Location, then 201 on the second poll")
    args = parser.parse_args()
    state = {"calls": 0, "polls": {}}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signed = self.headers.get("X-Rossum-Signature-SHA256", "")
            if args.secret is not None:
                expected = "sha256=" + hmac.new(args.secret.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(signed, expected):
                    print("refused: bad signature", flush=True)
                    self.answer(401, {"error": "bad signature"})
                    return
            payload = json.loads(body or b"{}")
            state["calls"] += 1
            call = state["calls"]
            print(f"call {call}: {payload.get('event')}.{payload.get('action')} from {payload.get('hook')}"
                  f" (signature {'checked' if args.secret else 'not checked'})", flush=True)
            if call <= args.fail:
                print(f"call {call}: answering 503", flush=True)
                self.answer(503, {"error": "failing on purpose"})
                return
            result = {
                "messages": [{"type": "info", "content": f"received {payload.get('event')}.{payload.get('action')}"}],
                "operations": [],
            }
            if args.asynchronous:
                state["polls"][str(call)] = [0, result]
                self.answer(202, {}, {"Location": f"/result/{call}"})
                return
            self.answer(200, result)

        def do_GET(self) -> None:
            key = self.path.rsplit("/", 1)[-1]
            entry = state["polls"].get(key)
            if not self.path.startswith("/result/") or entry is None:
                self.answer(404, {"error": "no such result"})
                return
            entry[0] += 1
            print(f"poll {entry[0]} of result {key}", flush=True)
            if entry[0] < 2:
                self.answer(202, {})
            else:
                self.answer(201, entry[1])

        def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
