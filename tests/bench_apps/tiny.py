"""A tiny ASGI app for the harness's own tests: a fast endpoint, a blocking one, and the faults a harness must
survive, each switched on by a path or an environment variable:

- `/hang` never answers, `/unavailable` answers 503, `/redirect` sends to `TINY_REDIRECT_TO`; `/sometimes`
  answers its first request (the harness's validation), then fails one in `TINY_FAIL_EVERY` (default 10): with a
  500, or by hanging when `TINY_FAULT=hang`;
- `TINY_CRASH_AFTER=S` exits S seconds after start-up, `TINY_STARTUP_DELAY=S` takes S seconds to start,
  `TINY_STDERR_MB=N` writes N MiB to stderr while it starts, then a last line.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time

REQUESTS = itertools.count(1)


async def start_up() -> None:
    crash_after = float(os.environ.get("TINY_CRASH_AFTER", "0"))
    if crash_after:
        asyncio.get_running_loop().call_later(crash_after, os._exit, 3)
    await asyncio.sleep(float(os.environ.get("TINY_STARTUP_DELAY", "0")))
    for _ in range(int(os.environ.get("TINY_STDERR_MB", "0"))):
        sys.stderr.write(("chatter " * 128 + "\n") * 1024)
    if os.environ.get("TINY_STDERR_MB"):
        sys.stderr.write("tiny: last words\n")
        sys.stderr.flush()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await start_up()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    status, headers, body = 200, [], b'{"ok": true}'
    if scope["path"] == "/block":
        time.sleep(0.01)
    elif scope["path"] == "/hang":
        await asyncio.sleep(3600)
    elif scope["path"] == "/unavailable":
        status = 503
    elif scope["path"] == "/redirect":
        status, headers = 302, [(b"location", os.environ.get("TINY_REDIRECT_TO", "http://localhost:9/").encode())]
    elif scope["path"] == "/sometimes":
        number = next(REQUESTS)
        if number > 1 and number % int(os.environ.get("TINY_FAIL_EVERY", "10")) == 0:
            if os.environ.get("TINY_FAULT") == "hang":
                await asyncio.sleep(3600)
            status = 500
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"12"), *headers]})
    await send({"type": "http.response.body", "body": body})
