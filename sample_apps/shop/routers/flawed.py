"""The flawed endpoints: each blocks the event loop in one way. Lines asyncguard must report end with `# AGnnn`."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time

import httpx
import requests
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from shop import database, exports, pricing
from shop.models import Account, ExportResult, PasswordHash, Pause, Price, SalesReport
from shop.settings import Settings

router = APIRouter(prefix="/flawed", tags=["flawed"])
SALT = b"asyncguard-sample"


@router.get("/sleep", response_model=Pause)
async def sleep() -> Pause:
    time.sleep(0.02)  # AG101
    return Pause(slept_ms=20)


@router.get("/price/{sku}", response_model=Price)
async def price(sku: str, request: Request) -> Price:
    settings: Settings = request.app.state.settings
    response = requests.get(f"{settings.upstream_url}/price/{sku}", timeout=5)  # AG102
    return Price(**response.json())


@router.get("/price-new-client/{sku}", response_model=Price)
async def price_new_client(sku: str, request: Request) -> Price:
    """Not blocking, but a new client per request: a new connection pool and TLS context every time."""
    settings: Settings = request.app.state.settings
    async with httpx.AsyncClient(base_url=settings.upstream_url) as client:
        response = await client.get(f"/price/{sku}")
    return Price(**response.json())


@router.get("/sales-report", response_model=SalesReport)
async def sales_report(request: Request) -> SalesReport:
    settings: Settings = request.app.state.settings
    with sqlite3.connect(settings.database) as conn:  # AG106
        orders, revenue, top_sku = conn.execute(database.SALES_REPORT).fetchone()  # AG106
    return SalesReport(orders=orders, revenue_cents=revenue, top_sku=top_sku)


@router.post("/password-hash", response_model=PasswordHash)
async def password_hash(password: str = "correct horse battery staple") -> PasswordHash:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 50_000)  # AG108
    return PasswordHash(algorithm="pbkdf2_sha256", digest=digest.hex())


@router.post("/export", response_model=ExportResult)
async def export(request: Request) -> ExportResult:
    settings: Settings = request.app.state.settings
    target = settings.export_dir / "flawed-orders.csv"
    target.parent.mkdir(parents=True, exist_ok=True)  # AG104
    temporary = exports.temporary_name(target)
    with open(temporary, "w", encoding="utf-8") as out:  # AG104
        out.write(exports.orders_csv())  # AG104
        out.flush()  # AG104
        os.fsync(out.fileno())  # AG104
    os.replace(temporary, target)  # AG104
    return ExportResult(rows=exports.EXPORT_ROWS, path=str(target))


async def account_from_upstream(request: Request) -> Account:
    settings: Settings = request.app.state.settings
    response = requests.get(f"{settings.upstream_url}/auth", timeout=5)  # AG102
    return Account(**response.json())


@router.get("/account", response_model=Account)
async def account(current: Account = Depends(account_from_upstream)) -> Account:
    return current


@router.get("/audited/ping")
async def audited_ping() -> dict:
    """Audited by the flawed middleware in shop.main."""
    return {"pong": True}


@router.get("/list-price/{sku}", response_model=Price)
async def list_price(sku: str, request: Request) -> Price:
    settings: Settings = request.app.state.settings
    return Price(sku=sku, price_cents=pricing.list_price(settings.upstream_url, sku))  # AG800


async def relay_tokens(upstream_url: str, count: int):
    with requests.get(f"{upstream_url}/tokens", params={"n": count}, stream=True, timeout=30) as upstream:  # AG102
        for line in upstream.iter_lines():
            if line:
                yield line + b"\n\n"


@router.get("/stream")
async def stream(request: Request, n: int = 20) -> StreamingResponse:
    settings: Settings = request.app.state.settings
    return StreamingResponse(relay_tokens(settings.upstream_url, n), media_type="text/event-stream")
