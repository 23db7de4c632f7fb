"""Checking many files: through the cache, in parallel worker processes when there are many to analyse.

Nothing here imports libcst: a warm run that finds every file in the cache never pays for loading it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Callable, Iterable, Iterator

from asyncguard.lint.cache import FindingsCache, digest
from asyncguard.lint.config import Settings
from asyncguard.lint.files import SourceFile
from asyncguard.lint.findings import Finding, not_checked

PARALLEL_THRESHOLD = 24
"""Below this many files to analyse, starting worker processes costs more than it saves."""


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0


# -- worker processes ----------------------------------------------------------------------------------------------
_worker_state: dict = {}


def _init_worker(settings: Settings, enabled: frozenset[str], modules: dict[str, Path], roots: list[Path]) -> None:
    from asyncguard.lint.checker import check_bytes
    from asyncguard.lint.knowledge import build_knowledge
    from asyncguard.lint.project import Project

    knowledge = build_knowledge(settings.extra_blocking_calls, settings.allowed_calls)
    project = Project(modules, knowledge, search_roots=roots)
    _worker_state.update(knowledge=knowledge, enabled=enabled, project=project, check=check_bytes)


def _check_in_worker(source: SourceFile, data: bytes | None) -> tuple[str | None, list[dict], list[str]]:
    """(content digest, findings as JSON, project files consulted); reads the file unless given its bytes."""
    if data is None:
        try:
            data = source.path.read_bytes()
        except OSError as error:
            return None, [not_checked(source.display, f"cannot read: {error.strerror or error}").to_json()], []
    project = _worker_state["project"]
    findings = _worker_state["check"](data, source, _worker_state["knowledge"], _worker_state["enabled"], project)
    dependencies = sorted(str(p) for p in project.consulted if p != source.path)
    project.consulted = set()
    return digest(data), [f.to_json() for f in findings], dependencies


def run(files: Iterable[SourceFile], settings: Settings, use_cache: bool = True,
        progress: Callable[[int], None] | None = None) -> RunResult:
    """Check every file, reusing cached findings, analysing the rest in parallel when there are many."""
    files = list(files)
    enabled = settings.enabled_codes()
    cache = FindingsCache(settings.project_root, settings.fingerprint(), enabled=use_cache)
    result = RunResult()
    pending: list[tuple[SourceFile, os.stat_result, bytes | None]] = []
    for source in files:
        result.files_checked += 1
        key = str(source.path)
        try:
            stat = source.path.stat()
            if not S_ISREG(stat.st_mode):  # a FIFO or device named *.py would block a read forever
                result.findings.append(not_checked(source.display, "not a regular file"))
                continue
            cached = cache.lookup(key, stat)
            data = None
            if cached is None and key in cache.entries:  # touched since: compare contents
                data = source.path.read_bytes()
                cached = cache.lookup_content(key, stat, digest(data))
        except OSError as error:
            result.findings.append(not_checked(source.display, f"cannot read: {error.strerror or error}"))
            continue
        if cached is not None:
            result.findings.extend(Finding.from_json({**f, "path": source.display}) for f in cached)
            if progress:
                progress(1)
            continue
        pending.append((source, stat, data))

    analysed = _analyse_all(pending, settings, enabled, files)
    for (source, stat, _), (content_digest, findings, dependencies) in zip(pending, analysed):
        if content_digest is not None and not any(f["code"] == "AG002" for f in findings):
            cache.store(str(source.path), stat, content_digest, [{**f, "path": ""} for f in findings],
                        dependencies)
        result.findings.extend(Finding.from_json({**f, "path": source.display}) for f in findings)
        if progress:
            progress(1)
    cache.save()
    result.findings.sort(key=lambda f: f.sort_key)
    return result


def _analyse_all(pending: list, settings: Settings, enabled: frozenset[str],
                 files: list[SourceFile]) -> Iterator[tuple[str | None, list, list[str]]]:
    if not pending:
        return
    from asyncguard.lint.project import module_keys, search_roots

    named = [(source.module, source.path) for source in files]
    modules, roots = module_keys(named), search_roots(named)
    workers = min(os.cpu_count() or 1, 8)
    if len(pending) < PARALLEL_THRESHOLD or workers < 2:
        _init_worker(settings, enabled, modules, roots)
        yield from (_check_in_worker(source, data) for source, _, data in pending)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(settings, enabled, modules, roots)) as executor:
        chunk = max(1, min(64, len(pending) // (workers * 8)))
        yield from executor.map(_check_in_worker, [p[0] for p in pending], [p[2] for p in pending],
                                chunksize=chunk)
