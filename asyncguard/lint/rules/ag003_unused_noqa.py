from asyncguard.lint.rule import Rule


class UnusedNoqa(Rule):
    """Reports a `# noqa: AG...` or `# asyncguard: ignore[AG...]` comment whose codes suppress nothing on its line:
    no call there is one the rule would report. Only asyncguard's own codes are read (`# noqa: E731` belongs to
    another tool, and a bare `# noqa` may too), and only codes the run selects.

    Only files with `async` code are analysed, so a suppression in a module of sync helpers alone is not judged.
    """

    code = "AG003"
    name = "unused-noqa"
    message = "unused suppression: {call}"
    why = (
        "A suppression outlives the call it was written for: the call is made async, or moved, and the comment stays "
        "behind, ready to hide the next blocking call written on that line. Removing it keeps every suppression a "
        "decision someone made about a call that is there."
    )
    flagged = [
        "import asyncio\n\n\nasync def handler():\n    await asyncio.sleep(1)  # noqa: AG101  # AG003\n",
    ]
    accepted = [
        "import time\n\n\nasync def handler():\n    time.sleep(1)  # noqa: AG101\n",
        "async def handler():\n    check = lambda x: x  # noqa: E731\n    return check(1)  # noqa\n",
    ]
