"""Writing a file so that a reader, or a crash, never meets half of it: what the project writes for users to keep
(results, pages, the cache, a baseline) goes through here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, then rename it over: `path` is the old file or the new, never half, and
    a failed write (a full disk, an interruption) leaves no temporary file behind."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
