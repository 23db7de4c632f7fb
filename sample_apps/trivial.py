"""The trivial async endpoint the harness is calibrated on (`make bench-harness`): how much load can it drive?"""

import asyncio

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict:
    return {"hello": "world"}


@app.get("/wait")
async def wait() -> dict:
    """Waits 20 ms without blocking: at 50 connections neither the server nor the load generator is saturated."""
    await asyncio.sleep(0.02)
    return {"waited_ms": 20}
