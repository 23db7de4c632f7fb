"""The on-disk cache of findings: one JSON file per tool version and configuration, entries keyed by path.

An entry is reused when the file's size and mtime are unchanged (no read at all), or when its content digest
matches; anything else is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asyncguard import __version__

CACHE_DIR = ".asyncguard_cache"
CACHE_FORMAT = 8
"""Version 2 added each file's summary and calls on the loop (the whole-program pass)."""


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class CacheEntry:
    mtime_ns: int
    size: int
    digest: str
    findings: list[dict] | None
    """None for a module only summarised: one the whole-program pass reached, outside the checked files."""
    dependencies: list[list] = field(default_factory=list)
    """[path, mtime_ns, size] of each project module whose bindings the findings depend on."""
    summary: dict | None = None
    """The file's sync functions (asyncguard.lint.checker.FileAnalysis); None until it is needed."""
    loop_calls: list[list] = field(default_factory=list)

    def dependencies_unchanged(self) -> bool:
        for path, mtime_ns, size in self.dependencies:
            try:
                stat = os.stat(path)
            except OSError:
                return False
            if stat.st_mtime_ns != mtime_ns or stat.st_size != size:
                return False
        return True


class FindingsCache:
    def __init__(self, project_root: Path, fingerprint: str, enabled: bool = True):
        self.enabled = enabled
        self.directory = project_root / CACHE_DIR
        self.file = self.directory / f"findings-{__version__}-{CACHE_FORMAT}-{fingerprint}.json"
        self.entries: dict[str, CacheEntry] = {}
        self.dirty = False
        if enabled:
            self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
            self.entries = {path: CacheEntry(**entry) for path, entry in raw.items()}
        except (OSError, ValueError, TypeError):
            self.entries = {}  # a missing or corrupt cache is an empty one

    def lookup(self, key: str, stat: os.stat_result) -> CacheEntry | None:
        """The entry of an unchanged file (same size and mtime, dependencies unchanged)."""
        entry = self.entries.get(key)
        if (entry is not None and entry.mtime_ns == stat.st_mtime_ns and entry.size == stat.st_size
                and entry.dependencies_unchanged()):
            return entry
        return None

    def lookup_content(self, key: str, stat: os.stat_result, content_digest: str) -> CacheEntry | None:
        """The entry of a file touched but with the same content."""
        entry = self.entries.get(key)
        if entry is not None and entry.digest == content_digest and entry.dependencies_unchanged():
            entry.mtime_ns, entry.size = stat.st_mtime_ns, stat.st_size
            self.dirty = True
            return entry
        return None

    def store(self, key: str, stat: os.stat_result, content_digest: str, findings: list[dict] | None,
              dependencies: list[str] = (), summary: dict | None = None, loop_calls: list[list] = ()) -> None:
        if not self.enabled:
            return
        self.entries[key] = CacheEntry(stat.st_mtime_ns, stat.st_size, content_digest, findings,
                                       stamped(dependencies), summary, list(loop_calls))
        self.dirty = True

    def store_summary(self, key: str, stat: os.stat_result, content_digest: str, summary: dict,
                      dependencies: list[str] = ()) -> None:
        """Add a summary to the file's entry (its findings stay), or start an entry that has only a summary."""
        entry = self.entries.get(key)
        if entry is None or entry.digest != content_digest:
            self.store(key, stat, content_digest, None, dependencies, summary)
        elif self.enabled:
            entry.summary = summary
            entry.dependencies += stamped(dependencies)
            self.dirty = True

    def save(self) -> None:
        """Atomic write; a cache that cannot be written (read-only checkout) is skipped silently."""
        if not (self.enabled and self.dirty):
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            gitignore = self.directory / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", encoding="utf-8")
            payload = {path: vars(entry) for path, entry in self.entries.items()}
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out, separators=(",", ":"))
            os.replace(temporary, self.file)
        except OSError:
            pass


def stamped(paths) -> list[list]:
    """[path, mtime_ns, size] of each file that still exists."""
    found = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        found.append([path, stat.st_mtime_ns, stat.st_size])
    return found
