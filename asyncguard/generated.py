"""Generated sections of hand-written files (README tables): text between two marker comments is replaced."""

from __future__ import annotations

import json
from pathlib import Path


def replace_section(path: Path, start: str, end: str, section: str) -> bool:
    """Put `section` (which starts with `start` and ends with `end`) in place of the old one; True when changed."""
    text = path.read_text(encoding="utf-8")
    begin, finish = text.index(start), text.index(end) + len(end)
    updated = text[:begin] + section + text[finish:]
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


def publish(out: Path, payload: dict, table: str, readme: Path | None, start: str, end: str) -> None:
    """A benchmark's figures: the JSON file, the table on stdout and, when asked, in the README."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(table)
    if readme is not None:
        replace_section(readme, start, end, table)
