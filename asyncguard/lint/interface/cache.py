"""The on-disk cache of findings: one JSON file per tool version and configuration, entries keyed by path.

An entry is reused when the file's size and mtime are unchanged (no read at all), or when its content digest
matches; anything else is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from asyncguard import __version__
from asyncguard.atomic import write_atomically
from asyncguard.lifetime import deferred_signals

CACHE_DIR = ".asyncguard_cache"
CACHE_FORMAT = 23
"""Version 2 added each file's summary and calls on the loop (the whole-program pass); 13 a summary per module name
the file is imported under, and the whole-program pass's own findings; 14 properties in outlines; 15 the coroutines
nothing runs; 16 summaries, loop calls and outlines in a file of their own, read only when the pass runs; 20 the
coroutines of files the app never imports among those nothing runs; 21 the functions nothing the app runs calls; 22 apps kept in an archive beside the served one."""


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
        "parameter_calls": Omittable([(str, int, [(str, bool)])]), "forwards": Omittable([(str, int, TableOf(str))]),
        "cached": Omittable(bool),
    })),
    "classes": Omittable(TableOf([str])),
    "derived": Omittable(TableOf({"line": int, "methods": [str], "abstract": Omittable(bool)})),
    "locks": Omittable([(str, str, int, int, int, int, str, str)]),
    "held": Omittable(TableOf([OneOf(((str, int, str, str, bool), (str, int, str)))])),
}
"""What asyncguard.lint.engine.checker.summarize writes and the whole-program pass reads ({} for a file not parsed)."""
OUTLINE = {**{name: [str] for name in ("assigned", "constants", "star_imports", "producers", "sync_functions",
                                       "generators", "derived", "decorated")},
           **{name: TableOf([str]) for name in ("class_attributes", "sync_methods", "methods", "bases", "properties")},
           "imported": TableOf(str), "returns": TableOf(str)}
"""asyncguard.lint.engine.names.Outline.to_json."""
LOOP_CALL = (str, int, int, int, int, str, str, TableOf(str))
"""Callee, span, context, the call as written, known argument types (asyncguard.lint.engine.checker)."""
ENTRY = {"mtime_ns": int, "size": int, "digest": str, "findings": OneOf((None, [FINDING])),
         "dependencies": [(str, int, int)]}
"""A CacheEntry as the findings file keeps it; change CACHE_FORMAT with it."""
ANALYSIS = {"digest": str, "summaries": TableOf(SUMMARY), "loop_calls": [LOOP_CALL], "outlines": TableOf(OUTLINE)}
"""The rest of a CacheEntry, in the analysis file: what only the whole-program pass reads."""
is_entry = validator(ENTRY)
is_analysis = validator(ANALYSIS)
PROGRAM = {"key": str, "findings": [FINDING], "unreached": [(str, str)]}
"""What the whole-program view of a run found: its own findings, and the (path, context) of the coroutines nothing
runs (asyncguard.lint.engine.reach), for the run over exactly these files (`program_key`)."""
is_program = validator(PROGRAM)


@dataclass
class CacheEntry:
    mtime_ns: int
    size: int
    digest: str
    findings: list[dict] | None
    """None for a module only summarised: one the whole-program pass reached, outside the checked files."""
    dependencies: list[list] = field(default_factory=list)
    """[path, mtime_ns, size] of each project module whose bindings the findings depend on."""
    summaries: dict[str, dict] = field(default_factory=dict)
    """The file's sync functions (asyncguard.lint.engine.checker.FileAnalysis) by the module name they were made
    under, which names them: a file imported as `database` by one module and as `app.features.database` by another
    has a summary for each. Made when needed."""
    loop_calls: list[list] = field(default_factory=list)
    outlines: dict[str, dict] = field(default_factory=dict)
    """What the file binds (asyncguard.lint.engine.names.Outline.to_json), by module name, as the whole-program pass
    read it: a later run that changed another file need not parse this one for it."""
    analysed: bool = True
    """Whether summaries, loop calls and outlines are here: False for an entry read from the findings file until
    the analysis file is read (`FindingsCache.load_analysis`), and after that for one the analysis file lacked."""

    def findings_part(self) -> dict:
        return {key: getattr(self, key) for key in ENTRY}

    def analysis_part(self) -> dict:
        return {key: getattr(self, key) for key in ANALYSIS}

    def is_current(self, path: str) -> bool:
        """Whether the file is still as it was when this entry was made (size and mtime)."""
        try:
            stat = os.stat(path)
        except OSError:
            return False
        return stat.st_mtime_ns == self.mtime_ns and stat.st_size == self.size

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
        self.program_file = self.directory / f"program-{__version__}-{CACHE_FORMAT}-{fingerprint}.json"
        self.analysis_file = self.directory / f"analysis-{__version__}-{CACHE_FORMAT}-{fingerprint}.json"
        self.analysis_loaded = not enabled
        self.entries: dict[str, CacheEntry] = {}
        self.dirty = False
        self.program: dict | None = None
        """`PROGRAM`: the whole-program view of the last run."""
        self.program_dirty = False
        if enabled:
            self._load()

    def _load(self) -> None:
        """A missing or unparsable cache is an empty one. A file whose checksum holds is as this tool wrote it, and
        read as it is; any other (edited by hand, cut short) has its entries checked one by one, and one of the wrong
        shape is left out, a miss: its file is checked again and the entry rewritten."""
        raw, trusted = read_checksummed(self.file)
        if not isinstance(raw, dict):
            self.dirty = raw is not None
            return
        try:
            self.entries = {path: CacheEntry(**entry, analysed=False) for path, entry in raw.items()
                            if trusted or is_entry(entry)}
        except TypeError:  # a checksum that holds over what some other version wrote
            self.entries = {path: CacheEntry(**entry, analysed=False) for path, entry in raw.items()
                            if is_entry(entry)}
        self.dirty = len(self.entries) != len(raw) or not trusted
        program, trusted = read_checksummed(self.program_file)
        if type(program) is dict and (trusted or is_program(program)):
            self.program = program

    def load_analysis(self) -> None:
        """Read the summaries, loop calls and outlines of the entries read from the findings file: a run that reuses
        the whole-program view needs none of them (most of the cache's bytes). A part of the wrong shape, or one
        made of other content, is left out: its entry stays `analysed=False`, and its file is checked again."""
        if self.analysis_loaded:
            return
        self.analysis_loaded = True
        raw, trusted = read_checksummed(self.analysis_file)
        for path, part in (raw.items() if isinstance(raw, dict) else ()):
            entry = self.entries.get(path)
            if (entry is not None and not entry.analysed and (trusted or is_analysis(part))
                    and part["digest"] == entry.digest):
                entry.summaries, entry.loop_calls, entry.outlines = part["summaries"], part["loop_calls"], \
                    part["outlines"]
                entry.analysed = True
        if any(not entry.analysed for entry in self.entries.values()):
            self.dirty = True

    def program_view(self, key: str) -> dict | None:
        """The whole-program view (`PROGRAM`) of a run over exactly these files, unchanged (`program_key`)."""
        return self.program if self.program is not None and self.program.get("key") == key else None

    def store_program(self, key: str, findings: list[dict], unreached: list[list[str]]) -> None:
        if self.enabled:
            self.program = {"key": key, "findings": findings, "unreached": unreached}
            self.program_dirty = True

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
              module: str = "") -> None:
        if not self.enabled:
            return
        self.entries[key] = CacheEntry(stat.st_mtime_ns, stat.st_size, content_digest, findings,
                                       stamped(dependencies), {} if summary is None else {module: summary},
                                       list(loop_calls))
        self.dirty = True

    def store_summary(self, key: str, stat: os.stat_result, content_digest: str, summary: dict,
                      dependencies: list[str], module: str) -> None:
        """Add the summary under `module` to the file's entry (its findings and other summaries stay), or start an
        entry that has only a summary."""
        entry = self.entries.get(key)
        if entry is None or entry.digest != content_digest:
            self.store(key, stat, content_digest, None, dependencies, summary, module=module)
        elif self.enabled:
            entry.summaries[module] = summary
            entry.dependencies += stamped(dependencies)
            self.dirty = True

    def store_outline(self, key: str, module: str, outline: dict) -> None:
        """Keep the outline of a file whose entry is current (one that is not is remade when the file is checked)."""
        entry = self.entries.get(key)
        if self.enabled and entry is not None and entry.is_current(key):
            entry.outlines[module] = outline
            self.dirty = True

    def save(self) -> None:
        """Atomic writes, whole before a signal ends the run (one arriving meanwhile is raised after them: what was
        analysed is kept); a cache that cannot be written (read-only checkout) is skipped silently."""
        if not (self.enabled and (self.dirty or self.program_dirty)):
            return
        with deferred_signals():
            self._write()

    def _write(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            gitignore = self.directory / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", encoding="utf-8")
            if self.dirty:
                self.load_analysis()  # so that the analysis file is written whole
                write_checksummed(self.file, {path: entry.findings_part() for path, entry in self.entries.items()})
                write_checksummed(self.analysis_file, {path: entry.analysis_part() for path, entry in
                                                       self.entries.items() if entry.analysed})
            if self.program_dirty:
                write_checksummed(self.program_file, self.program)
        except OSError:
            pass


def write_checksummed(path: Path, value: object) -> None:
    """JSON after a line with its digest: reading it back needs no check of its shape."""
    payload = json.dumps(value, separators=(",", ":"))
    write_atomically(path, f"{digest(payload.encode())}\n{payload}")


def read_checksummed(path: Path) -> tuple[object, bool]:
    """What `write_checksummed` wrote (None if nothing readable), and whether its checksum holds; a file without
    the checksum line is read as plain JSON."""
    try:
        data = path.read_bytes()
        header, _, payload = data.partition(b"\n")
        if not CHECKSUM.fullmatch(header):
            return json.loads(data), False
        return json.loads(payload), header.decode() == digest(payload)
    except (OSError, ValueError):
        return None, False


CHECKSUM = re.compile(rb"[0-9a-f]{32}")


def program_key(files: list[tuple[str, str, os.stat_result]]) -> str:
    """What the whole-program pass's findings depend on: every checked file, as shown, under its module name,
    with its size and mtime. Equal keys, equal findings (the settings are in the cache file's name)."""
    stamps = sorted([shown, module, stat.st_mtime_ns, stat.st_size] for shown, module, stat in files)
    return digest(json.dumps(stamps).encode())


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
