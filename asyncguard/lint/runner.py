"""Checking files: read, decode, parse, analyse, suppress, in parallel, through the cache.

`check_source` is the pure core (text in, findings out) used by the tests and the rule examples.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import libcst as cst

from asyncguard.lint.analyzer import analyze
from asyncguard.lint.cache import FindingsCache, digest
from asyncguard.lint.config import Settings
from asyncguard.lint.files import SourceFile
from asyncguard.lint.findings import Finding
from asyncguard.lint.knowledge import Knowledge, build_knowledge
from asyncguard.lint.project import Project, module_keys, search_roots
from asyncguard.lint.rule import rules_by_category, rules_by_code

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
IGNORE_COMMENT = re.compile(r"#\s*asyncguard:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
PARALLEL_THRESHOLD = 24
"""Below this many files to analyse, starting worker processes costs more than it saves."""


class SourceError(Exception):
    """The file cannot be checked; the message is the reason shown in its AG001 finding."""


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    files_from_cache: int = 0


def decode(data: bytes) -> str:
    """Source text as Python reads it: UTF-8 by default, a PEP 263 coding cookie, a BOM."""
    if b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot decode: {error}") from None
    return text.lstrip("\ufeff")


def syntax_error_reason(text: str, libcst_error: cst.ParserSyntaxError | None = None) -> tuple[str, int, int] | None:
    """Why the text is not Python, with a position, or None. `ast` is fast and places errors best; libcst has the
    last word, since it is what the analysis reads.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as error:
        return f"syntax error: {error.msg}", error.lineno or 1, error.offset or 1
    except (ValueError, MemoryError, RecursionError) as error:
        return f"cannot parse: {type(error).__name__}", 1, 1
    if libcst_error is not None:
        return f"syntax error: {libcst_error.message}", libcst_error.raw_line, libcst_error.raw_column + 1
    return None


def suppressed_codes(line: str) -> set[str] | None:
    """Codes a line's `# noqa[: X]` / `# asyncguard: ignore[X]` suppresses; `{"*"}` for all, None for none."""
    if "#" not in line:
        return None
    for pattern in (NOQA, IGNORE_COMMENT):
        match = pattern.search(line)
        if match:
            codes = match.group("codes")
            return {c.upper() for c in re.split(r"[\s,]+", codes) if c} if codes else {"*"}
    return None


def is_suppressed(finding: Finding, lines: Sequence[str]) -> bool:
    for number in {finding.line, finding.end_line}:
        if 1 <= number <= len(lines):
            codes = suppressed_codes(lines[number - 1])
            if codes is not None and ("*" in codes or finding.code in codes):
                return True
    return False


def check_source(text: str, path: str = "<string>", module: str = "module",
                 knowledge: Knowledge | None = None, enabled: frozenset[str] | None = None,
                 project: Project | None = None) -> list[Finding]:
    """Findings for one module's source text, suppressions applied, sorted by position."""
    knowledge = knowledge or build_knowledge()
    if "async" not in text:  # no coroutine, nothing can run on the loop: only the syntax is checked
        reason = syntax_error_reason(text)
        if reason is not None:
            try:  # newer syntax than this Python's `ast` knows may still be valid
                cst.parse_module(text)
                reason = None
            except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError):
                pass
        return [] if reason is None else [not_checked(path, *reason)]
    try:
        module_node = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        return [not_checked(path, *syntax_error_reason(text, error))]
    except (RecursionError, MemoryError, ValueError) as error:
        return [not_checked(path, f"cannot parse: {type(error).__name__}", 1, 1)]
    result = analyze(module_node, module, knowledge, project)
    by_category = rules_by_category()
    lines = text.splitlines()
    findings = []
    for raw, (line, column, end_line, end_column) in result.findings:
        rule = by_category[raw.api.category]
        if enabled is not None and rule.code not in enabled:
            continue
        shown = raw.call.replace("builtins.", "").replace(".__call__", "")
        if shown.startswith("<unknown>."):
            shown = shown[len("<unknown>."):]
        context = result.facts.describe(raw.frame)
        message = rule.message.format(call=shown, context=context)
        if raw.api.message:
            message = f"{raw.api.message}: `{shown}()` {context}"
        finding = Finding(path=path, line=line, column=column, end_line=end_line, end_column=end_column,
                          code=rule.code, message=message, category=raw.api.category,
                          context=context.removeprefix("in "), call=raw.call.replace("builtins.", ""),
                          suggestion=raw.api.use)
        if not is_suppressed(finding, lines):
            findings.append(finding)
    return sorted(findings, key=lambda f: f.sort_key)


def not_checked(path: str, reason: str, line: int = 1, column: int = 1) -> Finding:
    rule = rules_by_code()["AG001"]
    return Finding(path=path, line=max(line, 1), column=max(column, 1), end_line=max(line, 1),
                   end_column=max(column, 1), code=rule.code, message=rule.message.format(call=reason),
                   category="input", call=reason)


def internal_error(path: str, error: BaseException) -> Finding:
    rule = rules_by_code()["AG002"]
    reason = f"{type(error).__name__}: {error}"
    return Finding(path=path, line=1, column=1, end_line=1, end_column=1, code=rule.code,
                   message=rule.message.format(call=reason), category="internal", call=reason)


def check_bytes(data: bytes, source: SourceFile, knowledge: Knowledge, enabled: frozenset[str],
                project: Project | None = None) -> list[Finding]:
    """Never raises: every failure becomes an AG001 (the input) or AG002 (the checker) finding."""
    try:
        text = decode(data)
    except SourceError as error:
        return [not_checked(source.display, str(error))]
    try:
        return check_source(text, source.display, source.module, knowledge, enabled, project)
    except RecursionError:
        return [not_checked(source.display, "too deeply nested to analyse")]
    except Exception as error:  # a bug in asyncguard: report it, keep going
        return [internal_error(source.display, error)]


# -- worker processes ----------------------------------------------------------------------------------------------
_worker_state: dict = {}


def _init_worker(settings: Settings, enabled: frozenset[str], modules: dict[str, Path], roots: list[Path]) -> None:
    knowledge = build_knowledge(settings.extra_blocking_calls, settings.allowed_calls)
    project = Project(modules, knowledge, search_roots=roots)
    _worker_state.update(knowledge=knowledge, enabled=enabled, project=project)


def _check_in_worker(source: SourceFile, data: bytes | None) -> tuple[str | None, list[dict], list[str]]:
    """(content digest, findings as JSON, project files consulted); reads the file unless given its bytes."""
    if data is None:
        try:
            data = source.path.read_bytes()
        except OSError as error:
            return None, [not_checked(source.display, f"cannot read: {error.strerror or error}").to_json()], []
    project: Project = _worker_state["project"]
    findings = check_bytes(data, source, _worker_state["knowledge"], _worker_state["enabled"], project)
    dependencies = sorted(str(p) for p in project.consulted if p != source.path)
    project.consulted = set()
    return digest(data), [f.to_json() for f in findings], dependencies


def run(files: Iterable[SourceFile], settings: Settings, use_cache: bool = True,
        progress: Callable[[int], None] | None = None) -> RunResult:
    """Check every file, reusing cached findings, analysing the rest in parallel when there are many."""
    enabled = settings.enabled_codes()
    cache = FindingsCache(settings.project_root, settings.fingerprint(), enabled=use_cache)
    result = RunResult()
    pending: list[tuple[SourceFile, os.stat_result, bytes | None]] = []
    files = list(files)
    named = [(source.module, source.path) for source in files]
    modules, roots = module_keys(named), search_roots(named)
    for source in files:
        result.files_checked += 1
        key = str(source.path)
        try:
            stat = source.path.stat()
            cached = cache.lookup(key, stat)
            data = None
            if cached is None and key in cache.entries:  # touched since: compare contents
                data = source.path.read_bytes()
                cached = cache.lookup_content(key, stat, digest(data))
        except OSError as error:
            result.findings.append(not_checked(source.display, f"cannot read: {error.strerror or error}"))
            continue
        if cached is not None:
            result.files_from_cache += 1
            result.findings.extend(Finding.from_json({**f, "path": source.display}) for f in cached)
            if progress:
                progress(1)
            continue
        pending.append((source, stat, data))

    analysed = _analyse_all(pending, settings, enabled, modules, roots)
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


def _analyse_all(pending: list, settings: Settings, enabled: frozenset[str], modules: dict[str, Path],
                 roots: list[Path]) -> Iterator[tuple[str | None, list, list[str]]]:
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
