"""Settings from the environment, so the harness can point the app at its own upstream and database."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database: Path
    upstream_url: str
    export_dir: Path
    audit_log: Path

    @classmethod
    def from_env(cls) -> "Settings":
        scratch = Path(os.environ.get("SHOP_DATA_DIR") or tempfile.gettempdir()) / "asyncguard-shop"
        return cls(
            database=Path(os.environ.get("SHOP_DATABASE", scratch / "shop.sqlite3")),
            upstream_url=os.environ.get("SHOP_UPSTREAM_URL", "http://127.0.0.1:8701"),
            export_dir=Path(os.environ.get("SHOP_EXPORT_DIR", scratch / "exports")),
            audit_log=Path(os.environ.get("SHOP_AUDIT_LOG", scratch / "audit.log")),
        )
