"""A local Sentry endpoint for the bot tests: parses each envelope with the official sentry-sdk
parser (sentry_sdk.envelope.Envelope.deserialize) and prints one JSON line per request on stdout:
{"path", "auth", "status", "event"}. The first --limited requests get 429 with Retry-After.

Usage: receiver.py [--limited N] [--retry-after S]   (prints "PORT <n>" first)
"""
import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sentry_sdk.envelope import Envelope

ap = argparse.ArgumentParser()
ap.add_argument("--limited", type=int, default=0)
ap.add_argument("--retry-after", type=int, default=1)
args = ap.parse_args()
state = {"limited": args.limited}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("X-Sentry-Auth", "")
        if state["limited"] > 0:
            state["limited"] -= 1
            emit({"path": self.path, "auth": auth, "status": 429, "t": time.time()})
            self.send_response(429)
            self.send_header("Retry-After", str(args.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = Envelope.deserialize(body)
        events = [i.payload.json for i in env.items if i.headers.get("type") == "event"]
        emit({"path": self.path, "auth": auth, "status": 200, "t": time.time(),
              "header": env.headers, "events": events})
        out = json.dumps({"id": env.headers.get("event_id")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
emit({"port": server.server_address[1]})
server.serve_forever()
