"""A loop that stalls for a known time at a known period (`make bench-harness`, coordinated omission): every
`STALL_EVERY` seconds a task blocks the loop for `STALL_FOR` seconds, so the true latency distribution of requests
sent at a constant rate can be computed (`asyncguard.bench.omission`)."""

import asyncio
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI

STALL_FOR = float(os.environ.get("STALL_FOR", "0.2"))
STALL_EVERY = float(os.environ.get("STALL_EVERY", "2.0"))


async def stall_forever() -> None:
    loop = asyncio.get_running_loop()
    next_stall = loop.time() + STALL_EVERY
    while True:
        await asyncio.sleep(max(0.0, next_stall - loop.time()))
        time.sleep(STALL_FOR)  # the flaw, on purpose: nothing else runs meanwhile
        next_stall += STALL_EVERY


@asynccontextmanager
async def lifespan(app: FastAPI):
    task = asyncio.create_task(stall_forever())
    yield
    task.cancel()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def hello() -> dict:
    return {"hello": "world"}
