"""CSV exports: rows rendered once in memory, written durably (fsync) to a file replaced atomically."""

from __future__ import annotations

import csv
import io
import os
import uuid
from functools import lru_cache
from pathlib import Path

EXPORT_ROWS = 300_000


def render_rows(count: int = EXPORT_ROWS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "sku", "quantity", "price_cents"])
    writer.writerows((n, f"sku-{n % 200:03d}", n % 5 + 1, 100 + n % 9_900) for n in range(count))
    return buffer.getvalue()


@lru_cache(maxsize=1)
def orders_csv() -> str:
    """The export's content, rendered once: the endpoints measure writing it, not formatting it."""
    return render_rows()


def temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def write_export(target: Path, text: str | None = None) -> None:
    """Write then rename, so readers never see half a file (the blocking version the fixed endpoint offloads)."""
    text = orders_csv() if text is None else text
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(target)
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
