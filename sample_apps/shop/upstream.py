"""The upstream service the shop calls: a tiny ASGI app on 127.0.0.1 with a configurable latency.

Run by the harness (`uvicorn shop.upstream:app`), it answers `GET /price/{sku}`, `GET /auth`, `POST /audit` after
`UPSTREAM_LATENCY_MS` (default 20 ms), and streams `GET /tokens?n=` as server-sent events: the first token after
`UPSTREAM_FIRST_TOKEN_MS` (default 50 ms, the model's prefill), then one every `UPSTREAM_TOKEN_INTERVAL_MS`
(default 10 ms): the shape of an LLM's token stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from urllib.parse import parse_qs

LATENCY = float(os.environ.get("UPSTREAM_LATENCY_MS", "20")) / 1000
FIRST_TOKEN = float(os.environ.get("UPSTREAM_FIRST_TOKEN_MS", "50")) / 1000
TOKEN_INTERVAL = float(os.environ.get("UPSTREAM_TOKEN_INTERVAL_MS", "10")) / 1000


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/tokens":
        await stream_tokens(scope, send)
        return
    await asyncio.sleep(LATENCY)
    if path.startswith("/price/"):
        sku = path.rsplit("/", 1)[-1]
        body = {"sku": sku, "price_cents": 100 + zlib.crc32(sku.encode()) % 9_900}
    elif path == "/auth":
        body = {"user": "demo", "plan": "pro"}
    elif path in ("/audit", "/health"):
        body = {"ok": True}
    else:
        await respond(send, 404, {"detail": "not found"})
        return
    await respond(send, 200, body)


async def respond(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def stream_tokens(scope, send) -> None:
    count = int(parse_qs(scope["query_string"].decode()).get("n", ["20"])[0])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for index in range(count):
        await asyncio.sleep(FIRST_TOKEN if index == 0 else TOKEN_INTERVAL)
        await send({"type": "http.response.body", "body": f"data: token{index}\n\n".encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
