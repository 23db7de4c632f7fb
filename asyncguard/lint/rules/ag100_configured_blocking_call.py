from asyncguard.lint.rule import Rule


class ConfiguredBlockingCall(Rule):
    """Finds calls that your project declared blocking in `[tool.asyncguard] extra-blocking-calls`, when they run on
    the event loop.
    """

    code = "AG100"
    name = "configured-blocking-call-in-async-function"
    category = "configured"
    message = "blocking call `{call}()` {context}"
    why = (
        "Your own clients and wrappers block too: an internal SDK built on requests, a legacy database helper. "
        "Declaring them once makes every async call site visible."
    )
    example_config = {
        "extra-blocking-calls": {
            "legacy_billing.client.charge": {"message": "synchronous billing SDK", "suggestion": "billing_async"},
        }
    }
    flagged = [
        """\
from fastapi import FastAPI
from legacy_billing.client import charge

app = FastAPI()

@app.post("/orders")
async def create_order(amount: int):
    charge(amount)  # AG100
""",
    ]
    accepted = [
        """\
import asyncio
from fastapi import FastAPI
from legacy_billing.client import charge

app = FastAPI()

@app.post("/orders")
async def create_order(amount: int):
    await asyncio.to_thread(charge, amount)
""",
    ]
