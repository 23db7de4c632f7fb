"""Response models shared by the flawed and the fixed endpoints: both sides honour one contract."""

from __future__ import annotations

from pydantic import BaseModel


class Pause(BaseModel):
    slept_ms: float


class Price(BaseModel):
    sku: str
    price_cents: int


class SalesReport(BaseModel):
    orders: int
    revenue_cents: int
    top_sku: str


class PasswordHash(BaseModel):
    algorithm: str
    digest: str


class ExportResult(BaseModel):
    rows: int
    path: str


class Account(BaseModel):
    user: str
    plan: str
