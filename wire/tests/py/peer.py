"""Python `websockets` peer for cobra-wire's permessage-deflate interop test.

    peer.py server          echo server on 127.0.0.1, prints its port, then serves
    peer.py client PORT     connects, sends MESSAGES, checks the echoes, exits 0 on success
"""
import sys

from websockets.sync.client import connect
from websockets.sync.server import serve

MESSAGES = [
    "small",
    '{"id":"engine_fps_id","data":{"fps":30},"device":{"game":"wiso"}}' * 20,
    bytes(range(256)) * 40,
    "",
    "é" * 70000,
    '{"id":"engine_fps_id","data":{"fps":31},"device":{"game":"wiso"}}' * 20,
]


def echo(ws):
    for msg in ws:
        ws.send(msg)


def main():
    if sys.argv[1] == "server":
        with serve(echo, "127.0.0.1", 0, max_size=2**22) as server:
            print(server.socket.getsockname()[1], flush=True)
            server.serve_forever()
    else:
        port = int(sys.argv[2])
        with connect(f"ws://127.0.0.1:{port}/v2?appkey=k", subprotocols=["json"], max_size=2**22) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            if "permessage-deflate" not in ext:
                sys.exit(f"no permessage-deflate in the answer: {ext!r}")
            for m in MESSAGES:
                ws.send(m)
                got = ws.recv()
                if got != m:
                    sys.exit(f"echo mismatch for a message of {len(m)}")
            ws.close(1000, "done")
        print("ok", flush=True)


main()
