from asyncguard.lint.rule import Rule


class BlockingThreadPrimitive(Rule):
    """Finds waits on thread and process primitives on the event loop: `threading.Lock` (`acquire()` and `with
    lock:`), `Event.wait`, `Thread.join`, blocking `queue.Queue.get/put`, `concurrent.futures` `Future.result`,
    `wait`, `as_completed`, multiprocessing pools.

    A lock is reported only where some critical section under it, anywhere in the project, does blocking work (the
    message names which): one that only guards in-memory state is held for microseconds, and taking it on the loop
    waits no longer. Non-blocking forms (`acquire(blocking=False)`, `get(block=False)`, `get_nowait()`) are not
    reported.
    """

    code = "AG109"
    name = "blocking-thread-primitive-in-async-function"
    category = "thread"
    message = "blocking wait `{call}()` {context}"
    why = (
        "A thread primitive waits for another thread with the event loop held. If that thread needs the loop to make "
        "progress (a `run_coroutine_threadsafe` future, a queue fed by a coroutine), the service deadlocks."
    )
    flagged = [
        """\
import queue
import threading

jobs = queue.Queue()
lock = threading.Lock()

async def next_job():
    with lock:  # AG109
        return jobs.get()  # AG109
""",
        """\
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor()

async def render(page):
    return pool.submit(page.render).result()  # AG109
""",
    ]
    accepted = [
        """\
import asyncio
import queue

jobs = queue.Queue()

async def next_job():
    try:
        return jobs.get(block=False)
    except queue.Empty:
        return await asyncio.sleep(0.1)
""",
        """\
import asyncio
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor()

async def render(page):
    return await asyncio.get_running_loop().run_in_executor(pool, page.render)
""",
        """\
import threading

hits = {}
hits_lock = threading.Lock()  # every critical section under it only updates a dict

async def count(path):
    with hits_lock:
        hits[path] = hits.get(path, 0) + 1
""",
    ]
