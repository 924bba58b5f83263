#!/usr/bin/env python3
"""A webhook receiver to point a wasmhook (or Rossum) webhook hook at, by hand.

It checks the X-Rossum-Signature-SHA256 header against the shared secret, the way Rossum's
documentation tells receivers to, prints what arrived, and answers with a message:

    python3 tools/webhook-receiver.py --port 9000 --secret my-webhook-secret

Standard library only.
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
    args = parser.parse_args()

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
            print(f"{payload.get('event')}.{payload.get('action')} from {payload.get('hook')}"
                  f" (signature {'checked' if args.secret else 'not checked'})", flush=True)
            self.answer(200, {
                "messages": [{"type": "info", "content": f"received {payload.get('event')}.{payload.get('action')}"}],
                "operations": [],
            })

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
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
