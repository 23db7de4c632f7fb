from asyncguard.lint.rule import Rule


class NestedEventLoop(Rule):
    """Finds an event loop started from inside a coroutine: `asyncio.run()`, `loop.run_until_complete()`,
    `run_forever()`.
    """

    code = "AG111"
    name = "nested-event-loop-in-async-function"
    category = "nested-loop"
    message = "`{call}()` starts an event loop {context}"
    why = (
        "A coroutine already runs on a loop: `asyncio.run` raises `RuntimeError` there, and `run_until_complete` on "
        "another loop blocks this one until it finishes."
    )
    flagged = [
        """\
import asyncio

async def fetch_all(urls):
    return asyncio.run(gather(urls))  # AG111
""",
        """\
async def handler(loop):
    return loop.run_until_complete(work())  # AG111
""",
    ]
    accepted = [
        """\
import asyncio

async def fetch_all(urls):
    return await gather(urls)

if __name__ == "__main__":
    asyncio.run(fetch_all([]))
""",
    ]
