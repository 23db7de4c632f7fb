"""A small service as users bring their own: a JSON-body POST behind a bearer token, with a path parameter and a
query parameter, and a read of what it made. The token is `ORDERS_TOKEN` of the server's environment. Its schema
gives examples for some operations and not for one (`--discover`)."""

from __future__ import annotations

import os

from fastapi import FastAPI, Header, HTTPException, Path, Query
from pydantic import BaseModel

app = FastAPI()
ORDERS: dict[int, dict] = {}


class Order(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"item": "pen", "quantity": 1}]}}

    item: str
    quantity: int


def authorise(authorization: str | None) -> None:
    if authorization != f"Bearer {os.environ.get('ORDERS_TOKEN', 'secret')}":
        raise HTTPException(status_code=401, detail="not authorised")


@app.post("/login")
async def login(credentials: dict) -> dict:
    """The first step of a flow (`tests/bench_apps/shopper.py`): the token the other endpoints ask for."""
    if credentials.get("password") != "open sesame":
        raise HTTPException(status_code=401, detail="wrong password")
    return {"token": os.environ.get("ORDERS_TOKEN", "secret")}


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


@app.post("/shops/{shop_id}/orders", status_code=201)
async def create_order(order: Order, shop_id: int = Path(examples=[7]), express: bool = Query(False),
                       authorization: str | None = Header(None)) -> dict:
    authorise(authorization)
    number = len(ORDERS) + 1
    ORDERS[number] = {"id": number, "shop": shop_id, "item": order.item, "quantity": order.quantity,
                      "express": express}
    return ORDERS[number]


@app.get("/shops/{shop_id}/orders/{order_id}")
async def read_order(shop_id: int = Path(examples=[7]), order_id: int = Path(examples=[1]),
                     authorization: str | None = Header(None)) -> dict:
    authorise(authorization)
    return ORDERS.get(order_id, {"id": order_id, "shop": shop_id, "item": "none", "quantity": 0, "express": False})


@app.delete("/shops/{shop_id}/orders/{order_id}")
async def cancel_order(shop_id: int, order_id: int, authorization: str | None = Header(None)) -> dict:
    authorise(authorization)
    return ORDERS.pop(order_id, {"id": order_id})
