"""The on-disk cache of findings: one JSON file per tool version and configuration, entries keyed by path.

An entry is reused when the file's size and mtime are unchanged (no read at all), or when its content digest
matches; anything else is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from asyncguard import __version__
from asyncguard.atomic import write_atomically

CACHE_DIR = ".asyncguard_cache"
CACHE_FORMAT = 12
"""Version 2 added each file's summary and calls on the loop (the whole-program pass)."""


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# -- the shape of an entry, checked as it is loaded ----------------------------------------------------------------
@dataclass(frozen=True)
class TableOf:
    """A JSON object with any keys, each value of this shape."""

    values: object


@dataclass(frozen=True)
class OneOf:
    """A value of any of these shapes."""

    shapes: tuple


@dataclass(frozen=True)
class Omittable:
    """A key of a table that may be missing."""

    shape: object


def validator(shape: object) -> Callable[[object], bool]:
    """A test of whether a value read from JSON has this shape: a type (exactly: a bool is no int), None, `[item]`
    a list of items, `(a, b)` a list of exactly these, `{key: shape}` a table of exactly these keys (an `Omittable`
    one may be missing), or a `TableOf` or `OneOf`. Built once, so that loading a large cache stays cheap."""
    if isinstance(shape, type):
        return lambda value: type(value) is shape
    if shape is None:
        return lambda value: value is None
    if isinstance(shape, list):
        item = validator(shape[0])
        return lambda value: type(value) is list and all(map(item, value))
    if isinstance(shape, tuple):
        items = [validator(one) for one in shape]
        return lambda value: (type(value) is list and len(value) == len(items)
                              and all(test(item) for test, item in zip(items, value)))
    if isinstance(shape, TableOf):
        item = validator(shape.values)
        return lambda value: type(value) is dict and all(map(item, value.values()))
    if isinstance(shape, OneOf):
        tests = [validator(one) for one in shape.shapes]
        return lambda value: any(test(value) for test in tests)
    fields = {key: validator(one.shape if isinstance(one, Omittable) else one) for key, one in shape.items()}
    required = {key for key, one in shape.items() if not isinstance(one, Omittable)}
    return lambda value: (type(value) is dict and required <= value.keys() <= fields.keys()
                          and all(fields[key](item) for key, item in value.items()))


STEP = {"name": str, "path": str, "line": int}
FINDING = {"path": str, "line": int, "column": int, "end_line": int, "end_column": int, "code": str, "message": str,
           "category": str, "context": str, "call": str, "suggestion": str, "chain": [STEP], "via": str}
"""asyncguard.lint.findings.Finding.to_json."""
SUMMARY = {
    "functions": Omittable(TableOf({
        "line": int, "blocking": [(str, int, str, str, bool, OneOf((None, str)))], "calls": TableOf(int),
        "self_calls": Omittable(TableOf(int)), "parameters": Omittable([str]),
        "parameter_calls": Omittable([(str, int, [(str, bool)])]), "cached": Omittable(bool),
    })),
    "classes": Omittable(TableOf([str])),
    "derived": Omittable(TableOf({"line": int, "methods": [str], "abstract": Omittable(bool)})),
    "locks": Omittable([(str, str, int, int, int, int, str, str)]),
    "held": Omittable(TableOf([OneOf(((str, int, str, str, bool), (str, int, str)))])),
}
"""What asyncguard.lint.engine.checker.summarize writes and the whole-program pass reads ({} for a file not parsed)."""
LOOP_CALL = (str, int, int, int, int, str, str, TableOf(str))
"""Callee, span, context, the call as written, known argument types (asyncguard.lint.engine.checker)."""
ENTRY = {"mtime_ns": int, "size": int, "digest": str, "findings": OneOf((None, [FINDING])),
         "dependencies": [(str, int, int)], "summary": OneOf((None, SUMMARY)), "loop_calls": [LOOP_CALL],
         "summary_module": str}
"""A CacheEntry; change CACHE_FORMAT with it."""
is_entry = validator(ENTRY)


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
    """The file's sync functions (asyncguard.lint.engine.checker.FileAnalysis); None until it is needed."""
    loop_calls: list[list] = field(default_factory=list)
    summary_module: str = ""
    """The module name the summary was made under: its functions are named in it (a file imported as `database`
    by one module and as `app.features.database` by another has a summary for each; the entry keeps one)."""

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
        """A missing or unparsable cache is an empty one; an entry of the wrong shape (written by hand, or by a
        bug) is left out, a miss: its file is checked again and the entry rewritten."""
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(raw, dict):
            self.dirty = True
            return
        self.entries = {path: CacheEntry(**entry) for path, entry in raw.items() if is_entry(entry)}
        self.dirty = len(self.entries) != len(raw)

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
              dependencies: list[str] = (), summary: dict | None = None, loop_calls: list[list] = (),
              summary_module: str = "") -> None:
        if not self.enabled:
            return
        self.entries[key] = CacheEntry(stat.st_mtime_ns, stat.st_size, content_digest, findings,
                                       stamped(dependencies), summary, list(loop_calls), summary_module)
        self.dirty = True

    def store_summary(self, key: str, stat: os.stat_result, content_digest: str, summary: dict,
                      dependencies: list[str], module: str) -> None:
        """Add a summary to the file's entry (its findings stay), or start an entry that has only a summary; the
        summary a checked file's own analysis made, under its own name, is never replaced by one under another."""
        entry = self.entries.get(key)
        if entry is None or entry.digest != content_digest:
            self.store(key, stat, content_digest, None, dependencies, summary, summary_module=module)
        elif self.enabled and (entry.findings is None or entry.summary is None):
            entry.summary, entry.summary_module = summary, module
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
            write_atomically(self.file, json.dumps(payload, separators=(",", ":")))
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
