"""A tiny ASGI app for the harness's own tests: a fast endpoint, a blocking one, and an optional crash."""

from __future__ import annotations

import asyncio
import os
import time


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                crash_after = float(os.environ.get("TINY_CRASH_AFTER", "0"))
                if crash_after:
                    asyncio.get_running_loop().call_later(crash_after, os._exit, 3)
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/block":
        time.sleep(0.01)
    body = b'{"ok": true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"12")]})
    await send({"type": "http.response.body", "body": body})
