"""The trivial async endpoint the harness is calibrated on (`make bench-harness`): how much load can it drive?"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict:
    return {"hello": "world"}
