"""The corrected twins of the flawed endpoints: same paths under /fixed, same response models."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import aiosqlite
import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from shop import database, exports, pricing
from shop.models import Account, ExportResult, PasswordHash, Pause, Price, SalesReport
from shop.settings import Settings

router = APIRouter(prefix="/fixed", tags=["fixed"])
SALT = b"asyncguard-sample"
HASHING = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="hashing")
"""CPU-bound work off the loop, one thread per core the server may use: more threads would not hash faster, only
take the CPU from the loop's thread (and so from every other request)."""


def shared_client(request: Request) -> httpx.AsyncClient:
    """The one pooled client the lifespan opened (shop.main)."""
    return request.app.state.http


def shared_database(request: Request) -> aiosqlite.Connection:
    """The one aiosqlite connection the lifespan opened: its thread runs the queries one after another."""
    return request.app.state.db


@router.get("/sleep", response_model=Pause)
async def sleep() -> Pause:
    await asyncio.sleep(0.02)
    return Pause(slept_ms=20)


@router.get("/sleep-threadpool", response_model=Pause)
def sleep_threadpool() -> Pause:
    """The threadpool baseline: a plain `def` handler may block; FastAPI runs it in a worker thread."""
    time.sleep(0.02)
    return Pause(slept_ms=20)


@router.get("/price/{sku}", response_model=Price)
async def price(sku: str, client: httpx.AsyncClient = Depends(shared_client)) -> Price:
    response = await client.get(f"/price/{sku}")
    return Price(**response.json())


@router.get("/sales-report", response_model=SalesReport)
async def sales_report(db: aiosqlite.Connection = Depends(shared_database)) -> SalesReport:
    async with db.execute(database.SALES_REPORT) as cursor:
        orders, revenue, top_sku = await cursor.fetchone()
    return SalesReport(orders=orders, revenue_cents=revenue, top_sku=top_sku)


@router.post("/password-hash", response_model=PasswordHash)
async def password_hash(password: str = "correct horse battery staple") -> PasswordHash:
    loop = asyncio.get_running_loop()
    digest = await loop.run_in_executor(HASHING, hashlib.pbkdf2_hmac, "sha256", password.encode(), SALT, 50_000)
    return PasswordHash(algorithm="pbkdf2_sha256", digest=digest.hex())


@router.post("/export", response_model=ExportResult)
async def export(request: Request) -> ExportResult:
    settings: Settings = request.app.state.settings
    target = settings.export_dir / "fixed-orders.csv"
    await asyncio.to_thread(exports.write_export, target)
    return ExportResult(rows=exports.EXPORT_ROWS, path=str(target))


async def account_from_upstream(client: httpx.AsyncClient = Depends(shared_client)) -> Account:
    response = await client.get("/auth")
    return Account(**response.json())


@router.get("/account", response_model=Account)
async def account(current: Account = Depends(account_from_upstream)) -> Account:
    return current


@router.get("/audited/ping")
async def audited_ping() -> dict:
    """Audited by the fixed middleware in shop.main."""
    return {"pong": True}


@router.get("/list-price/{sku}", response_model=Price)
async def list_price(sku: str, client: httpx.AsyncClient = Depends(shared_client)) -> Price:
    return Price(sku=sku, price_cents=await pricing.list_price_async(client, sku))


async def relay_tokens(client: httpx.AsyncClient, count: int):
    async with client.stream("GET", "/tokens", params={"n": count}) as upstream:
        async for line in upstream.aiter_lines():
            if line:
                yield line.encode() + b"\n\n"


@router.get("/stream")
async def stream(n: int = 20, client: httpx.AsyncClient = Depends(shared_client)) -> StreamingResponse:
    return StreamingResponse(relay_tokens(client, n), media_type="text/event-stream")
