from asyncguard.lint.rule import Rule


class BlockingInput(Rule):
    """Finds `input()` and `getpass.getpass()` on the event loop."""

    code = "AG110"
    name = "blocking-input-in-async-function"
    category = "input"
    message = "blocking terminal input `{call}()` {context}"
    why = "Waiting for a person to type holds the event loop until they do; under a server, stdin may never answer."
    flagged = [
        """\
async def confirm():
    return input("continue? ") == "y"  # AG110
""",
    ]
    accepted = [
        """\
import asyncio

async def confirm():
    return await asyncio.to_thread(input, "continue? ") == "y"
""",
    ]
