"""A cobra subscriber on Python `websockets`, reading as fast as Python does (slower than the
server): the reading dashboard of the slow-subscriber tests (server/tests/slow_subscribers.rs).

    python cobra_reader_pyws.py URL ROLE SECRET CHANNEL COUNT

Authenticates, subscribes to CHANNEL (live), prints `SUBSCRIBED`, then reads until COUNT
messages arrived. Each message is a JSON object with an integer `n`; the peer checks they come
0, 1, 2, ... Prints one JSON line at the end: {"received": N, "in_order": bool, "other": [...]},
where `other` holds every PDU that was not subscription data (there must be none).
"""
import asyncio
import base64
import hashlib
import hmac
import json
import sys

from websockets.asyncio.client import connect


async def request(ws, pdu_id, action, body):
    await ws.send(json.dumps({"action": action, "id": pdu_id, "body": body}))
    return json.loads(await ws.recv())


async def main(url, role, secret, channel, count):
    async with connect(url, subprotocols=["json"], max_size=2**24, compression=None) as ws:
        hs = await request(ws, 1, "auth/handshake", {"method": "role_secret", "data": {"role": role}})
        nonce = hs["body"]["data"]["nonce"]
        digest = hmac.new(secret.encode(), nonce.encode(), hashlib.md5).digest()
        auth = await request(
            ws, 2, "auth/authenticate",
            {"method": "role_secret", "credentials": {"hash": base64.b64encode(digest).decode()}},
        )
        assert auth["action"] == "auth/authenticate/ok", auth
        sub = await request(ws, 3, "rtm/subscribe", {"channel": channel})
        assert sub["action"] == "rtm/subscribe/ok", sub
        print("SUBSCRIBED", flush=True)
        received, in_order, other = 0, True, []
        while received < count and len(other) < 10:
            pdu = json.loads(await ws.recv())
            if pdu.get("action") != "rtm/subscription/data":
                other.append(pdu)
                continue
            for message in pdu["body"]["messages"]:
                if message.get("n") != received:
                    in_order = False
                received += 1
        print(json.dumps({"received": received, "in_order": in_order, "other": other}), flush=True)


if __name__ == "__main__":
    url, role, secret, channel, count = sys.argv[1:6]
    asyncio.run(main(url, role, secret, channel, int(count)))
