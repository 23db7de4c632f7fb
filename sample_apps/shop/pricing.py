"""Price look-ups against the upstream service, used through helpers as real services do."""

from __future__ import annotations

import httpx
import requests


def list_price(upstream_url: str, sku: str) -> int:
    """The catalogue price, in cents. Blocking: two calls down, `requests.get` waits for the upstream."""
    return _fetch_price(f"{upstream_url}/price/{sku}")


def _fetch_price(url: str) -> int:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()["price_cents"]


async def list_price_async(client: httpx.AsyncClient, sku: str) -> int:
    """The same price through the shared async client."""
    return await _fetch_price_async(client, f"/price/{sku}")


async def _fetch_price_async(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()["price_cents"]
