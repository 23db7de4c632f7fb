from asyncguard.lint.rule import Rule


class BlockingCallThroughHelpers(Rule):
    """Finds calls on the event loop of the project's own sync functions that block: directly or through any
    number of further calls, in the same module or others, through methods, constructors and inherited methods,
    and through what a helper calls on an argument the caller passes (`get_user(db, 1)` with `db: Session`, where
    `def get_user(db, user_id)` runs `db.query(...).first()`). The message and the JSON `chain` show the way to
    the blocking call, shortest first.

    Of several chains, the one shown ends in real I/O (network, database, subprocess, file) before a weak call (a
    lock, a cheap stat), then is the shortest; each step carries the line of the call it makes next. A call on
    `self` runs the override of the instance's class (a template method), and a Protocol's or ABC's method the one
    project class that implements it.

    A chain counts when its blocking call's own rule is selected (ignore AG104 and file I/O reached through
    helpers is ignored too). A `# noqa` on the blocking call inside the helper clears every chain through it;
    one on the call in the coroutine clears that call.
    """

    code = "AG800"
    name = "blocking-call-through-helpers-in-async-function"
    message = "`{call}()` blocks the event loop {context}"
    why = (
        "The blocking call is rarely written in the handler: the handler calls `billing.charge()`, which calls "
        "`_post_to_gateway()`, which calls `requests.post`. The loop is held just the same, for every request of "
        "the worker, and no linter that reads the handler alone sees it."
    )
    flagged = [
        """\
import requests
from fastapi import FastAPI

app = FastAPI()

def _post_to_gateway(payload):
    return requests.post("https://pay.example/charge", json=payload, timeout=5)

def charge(order):
    return _post_to_gateway({"order": order})

@app.post("/orders/{order}/pay")
async def pay(order: int):
    charge(order)  # AG800
    return {"paid": True}
""",
        """\
import time

class Inventory:
    def __init__(self):
        self.ready = self._warm_up()

    def _warm_up(self):
        time.sleep(1)
        return True

    @staticmethod
    def reserve(sku):
        time.sleep(0.1)

async def handler():
    stock = Inventory()  # AG800
    Inventory.reserve("sku-1")  # AG800
""",
        """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

app = FastAPI()

def get_db():
    ...

def get_user(db, user_id):  # no annotation: the caller's `db` tells what it is
    return db.query(User).filter(User.id == user_id).first()

@app.get("/users/{user_id}")
async def read_user(user_id: int, db: Session = Depends(get_db)):
    return get_user(db, user_id)  # AG800
""",
    ]
    accepted = [
        """\
import asyncio
import requests

def charge(order):
    return requests.post("https://pay.example/charge", json={"order": order}, timeout=5)

async def pay(order: int):
    await asyncio.to_thread(charge, order)  # handed to a thread, uncalled
""",
        """\
import requests

def charge(order):
    return requests.post("https://pay.example/charge", json={"order": order}, timeout=5)

def pay(order: int):  # a plain def: FastAPI runs it in its threadpool
    charge(order)

async def later(tasks, order):
    tasks.add_task(charge, order)  # a background task, after the response
""",
        """\
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

app = FastAPI()

def get_db():
    ...

def display_name(user):
    return user.name.title()

@app.get("/users/{user_id}")
async def read_user(user_id: int, db: AsyncSession = Depends(get_db)):
    user = await db.get(User, user_id)
    return display_name(user)  # attribute reads only
""",
        """\
from fastapi.responses import StreamingResponse

def iter_file(path):
    with open(path, "rb") as f:
        yield from f

async def download(path):
    return StreamingResponse(iter_file(path))  # a sync generator: Starlette iterates it in its threadpool
""",
    ]
