"""The shop's SQLite database: schema and seed data created at startup, and the queries both variants run."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

SKUS = [f"sku-{n:03d}" for n in range(200)]
SEED_ORDERS = 60_000

SALES_REPORT = """
    select count(*), sum(quantity * price_cents),
           (select sku from orders group by sku order by sum(quantity) desc limit 1)
    from orders
"""
EXPORT_ROWS = "select id, sku, quantity, price_cents from orders order by id limit 20000"


def create(path: Path) -> None:
    """Create and seed the database once; a second start reuses it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("create table if not exists orders (id integer primary key, sku text, quantity integer, "
                     "price_cents integer)")
        if conn.execute("select count(*) from orders").fetchone()[0] == 0:
            rng = random.Random(7)
            conn.executemany(
                "insert into orders (sku, quantity, price_cents) values (?, ?, ?)",
                ((rng.choice(SKUS), rng.randint(1, 5), rng.randint(100, 10_000)) for _ in range(SEED_ORDERS)),
            )
