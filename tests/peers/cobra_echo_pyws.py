"""A WebSocket echo peer on Python `websockets` that speaks just enough cobra for the SDK's
permessage-deflate interop test (tests/interop_deflate.rs), so the real `cobra::Client` runs
against it unchanged.

    python cobra_echo_pyws.py SECRET [--no-compression] [--server-max-window-bits N]
        [--client-max-window-bits N] [--server-no-context-takeover] [--client-no-context-takeover]

A `answer=STYLE` parameter in the request's query reshapes this server's 101 answer (same
meaning, unusual form), for the SDK's handshake tolerance test (tests/interop_handshake.rs); see
`reshape` for the styles.

Without options the server uses the library's own default permessage-deflate settings
(`compression="deflate"`). Prints `LISTENING <port>` once it accepts connections on 127.0.0.1.

Protocol (one connection at a time is enough for the test, but any number works):
- auth/handshake -> ok with a fresh nonce; auth/authenticate -> ok when the hash is
  base64(HMAC-MD5(SECRET, nonce)), error otherwise.
- rtm/subscribe -> ok; rtm/publish -> ok, then the message comes back as rtm/subscription/data
  to every subscription on its channel. Answers longer than FRAGMENT characters are sent as a
  fragmented message.
- rtm/read of `negotiated_extensions` -> the Sec-WebSocket-Extensions header this server
  answered ("" when none); rtm/read of `wire_stats` -> counts of what arrived on this
  connection: data messages, data frames, and messages whose first frame had RSV1 set (that is,
  compressed by the client).
"""
import argparse
import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import os
import re
import urllib.parse

import websockets
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    ServerPerMessageDeflateFactory,
    enable_server_permessage_deflate,
)
from websockets.datastructures import Headers
from websockets.frames import Opcode

FRAGMENT = 10_000
DATA = (Opcode.TEXT, Opcode.BINARY)


def counting(factory):
    """Wraps the factory so each negotiated extension counts the frames it decodes."""
    negotiate = factory.process_request_params

    def process_request_params(params, accepted):
        response, ext = negotiate(params, accepted)
        counts = {"compressed_messages_in": 0, "data_frames_in": 0}
        decode = ext.decode

        def counting_decode(frame, *, max_size=None):
            if frame.opcode in DATA or frame.opcode is Opcode.CONT:
                counts["data_frames_in"] += 1
            if frame.opcode in DATA and frame.rsv1:
                counts["compressed_messages_in"] += 1
            return decode(frame, max_size=max_size)

        ext.decode = counting_decode
        ext.cobra_counts = counts
        return response, ext

    factory.process_request_params = process_request_params
    return factory


def extensions(args):
    if args.no_compression:
        return []
    custom = {
        "server_max_window_bits": args.server_max_window_bits,
        "client_max_window_bits": args.client_max_window_bits,
        "server_no_context_takeover": args.server_no_context_takeover,
        "client_no_context_takeover": args.client_no_context_takeover,
    }
    if any(v not in (None, False) for v in custom.values()):
        factory = ServerPerMessageDeflateFactory(**custom)
    else:
        # Exactly what `compression="deflate"` (the default) installs.
        [factory] = enable_server_permessage_deflate(None)
    return [counting(factory)]


def explicit_params(value):
    """The same permessage-deflate agreement, spelled out: the default window sizes written
    explicitly, numbers quoted, odd spacing around the separators."""
    name, *params = [p.strip() for p in value.split(";")]
    keys = {p.split("=")[0].strip() for p in params}
    params += [f"{k}=15" for k in ("server_max_window_bits", "client_max_window_bits")
               if k not in keys]
    params = [re.sub(r"=\s*(\d+)$", r'="\1"', p) for p in params]
    return " ;  ".join([name, *params])


def reshape(style, reason, items):
    """The 101's reason phrase and (name, value) headers, reshaped by `style`; the same styles
    as `reshape` in cobra_echo_node_ws.js."""
    lower = {n.lower(): n for n, _ in items}
    if style == "lowercase":
        items = [(n.lower(), {"upgrade": "websocket", "connection": "upgrade"}.get(n.lower(), v))
                 for n, v in items]
    elif style == "uppercase":
        items = [(n.upper(), {"upgrade": "WEBSOCKET", "connection": "UPGRADE"}.get(n.lower(), v))
                 for n, v in items]
    elif style == "folded":  # obs-fold (RFC 9112 §5.2): a value continued on lines starting with SP/HTAB
        folds = {"sec-websocket-extensions": lambda v: re.sub(r";\s*", ";\r\n\t", v),
                 "sec-websocket-accept": lambda v: "\r\n " + v}
        items = [(n, folds.get(n.lower(), lambda v: v)(v)) for n, v in items]
        items.append(("X-Folded", "first\r\n  second"))
    elif style == "extension-params":
        items = [(n, explicit_params(v) if n.lower() == "sec-websocket-extensions" else v)
                 for n, v in items]
    elif style == "no-protocol":
        items = [(n, v) for n, v in items if n.lower() != "sec-websocket-protocol"]
    elif style == "split-connection":
        items = [(n, v) for n, v in items if n.lower() != "connection"]
        items += [("Connection", "keep-alive"), ("Connection", "Upgrade")]
    elif style == "decorated":
        reason = "Web Socket Protocol Handshake"
        items = [(n, "Upgrade, keep-alive" if n.lower() == "connection" else v) for n, v in items]
        items += [("Server", "nginx/1.25.3"), ("Set-Cookie", "a=b; Path=/; HttpOnly"),
                  ("Cache-Control", "no-cache"), ("X-Info", "caf\u00e9")]
    elif style == "bare-status":
        reason = ""
    elif style not in ("", "plain"):
        raise ValueError(f"unknown answer style {style!r}")
    assert "sec-websocket-accept" in lower
    return reason, items


def process_response(connection, request, response):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
    style = query.get("answer", [""])[0]
    if response.status_code != 101 or not style:
        return None
    reason, items = reshape(style, response.reason_phrase, list(response.headers.raw_items()))
    headers = Headers()
    for name, value in items:
        headers.set_insecure(name, value)  # no validation: folded values on purpose
    return dataclasses.replace(response, reason_phrase=reason, headers=headers)


def reply(action, pdu_id, body):
    return json.dumps({"action": action, "id": pdu_id, "body": body})


async def send(ws, text):
    if len(text) > FRAGMENT:
        await ws.send([text[i : i + FRAGMENT] for i in range(0, len(text), FRAGMENT)])
    else:
        await ws.send(text)


def make_handler(secret):
    async def handler(ws):
        negotiated = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        counts = {"messages_in": 0}
        ext_counts = [getattr(e, "cobra_counts", None) for e in ws.protocol.extensions]
        ext_counts = next((c for c in ext_counts if c is not None), {})
        nonce = ""
        subscriptions = {}  # channel -> [subscription id]
        data_id = 0
        position = 0
        async for raw in ws:
            counts["messages_in"] += 1
            pdu = json.loads(raw)
            action, pdu_id, body = pdu["action"], pdu.get("id", 0), pdu.get("body", {})
            if action == "auth/handshake":
                nonce = base64.b64encode(os.urandom(16)).decode()
                data = {"nonce": nonce, "version": f"pyws-{websockets.__version__}",
                        "connection_id": "pyws", "node": "pyws"}
                await ws.send(reply("auth/handshake/ok", pdu_id, {"data": data}))
            elif action == "auth/authenticate":
                want = base64.b64encode(
                    hmac.new(secret.encode(), nonce.encode(), hashlib.md5).digest()
                ).decode()
                ok = body.get("credentials", {}).get("hash") == want
                await ws.send(reply("auth/authenticate/" + ("ok" if ok else "error"), pdu_id,
                                    {} if ok else {"error": "authentication_failed"}))
            elif action == "rtm/subscribe":
                sid = body.get("subscription_id") or body["channel"]
                subscriptions.setdefault(body["channel"], []).append(sid)
                await ws.send(reply("rtm/subscribe/ok", pdu_id,
                                    {"position": f"1-{position}", "subscription_id": sid}))
            elif action == "rtm/publish":
                position += 1
                channels = body.get("channels") or [body["channel"]]
                await ws.send(reply("rtm/publish/ok", pdu_id, {"position": f"1-{position}"}))
                for channel in channels:
                    for sid in subscriptions.get(channel, []):
                        await send(ws, reply("rtm/subscription/data", data_id, {
                            "subscription_id": sid, "position": f"1-{position}",
                            "messages": [body["message"]]}))
                        data_id += 1
            elif action == "rtm/read" and body.get("channel") == "negotiated_extensions":
                await ws.send(reply("rtm/read/ok", pdu_id, {"message": negotiated}))
            elif action == "rtm/read" and body.get("channel") == "wire_stats":
                await ws.send(reply("rtm/read/ok", pdu_id, {"message": {**counts, **ext_counts}}))
            else:
                await ws.send(reply(action + "/error", pdu_id, {"error": "unsupported"}))

    return handler


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("secret")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--server-max-window-bits", type=int)
    parser.add_argument("--client-max-window-bits", type=int)
    parser.add_argument("--server-no-context-takeover", action="store_true")
    parser.add_argument("--client-no-context-takeover", action="store_true")
    args = parser.parse_args()
    async with serve(make_handler(args.secret), "127.0.0.1", 0, subprotocols=["json"],
                     compression=None, extensions=extensions(args),
                     max_size=64 * 2**20, process_response=process_response) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await server.serve_forever()


asyncio.run(main())
