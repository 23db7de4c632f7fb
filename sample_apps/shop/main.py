"""The shop application: `uvicorn shop.main:app` (with `sample_apps/` on the import path)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import aiosqlite
import httpx
import requests
from fastapi import FastAPI, Request

from shop import database
from shop.routers import fixed, flawed
from shop.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = Settings.from_env()
    await asyncio.to_thread(database.create, settings.database)
    app.state.settings = settings
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with (httpx.AsyncClient(base_url=settings.upstream_url, limits=limits, timeout=10) as client,
                aiosqlite.connect(settings.database) as db):
        app.state.http, app.state.db = client, db
        yield


app = FastAPI(title="asyncguard sample shop", lifespan=lifespan)
app.include_router(flawed.router)
app.include_router(fixed.router)


@app.middleware("http")
async def audit_flawed(request: Request, call_next):
    """Ships an audit event for /flawed/audited/* with a blocking client."""
    response = await call_next(request)
    if request.url.path.startswith("/flawed/audited/"):
        upstream = request.app.state.settings.upstream_url
        requests.post(f"{upstream}/audit", json={"path": request.url.path}, timeout=5)  # AG102
    return response


@app.middleware("http")
async def audit_fixed(request: Request, call_next):
    """Ships the same audit event for /fixed/audited/* through the shared async client."""
    response = await call_next(request)
    if request.url.path.startswith("/fixed/audited/"):
        await request.app.state.http.post("/audit", json={"path": request.url.path})
    return response


@app.get("/health")
async def health() -> dict:
    return {"ok": True}
