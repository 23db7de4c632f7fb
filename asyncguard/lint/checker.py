"""Checking one file: decode, parse, analyse, apply suppressions. Never raises for any input.

`check_source` is the pure core (text in, findings out) used by the tests and the rule examples.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from typing import Sequence

import libcst as cst

from asyncguard.lint.analyzer import analyze
from asyncguard.lint.files import SourceFile
from asyncguard.lint.findings import Finding, internal_error, not_checked
from asyncguard.lint.knowledge import Knowledge, build_knowledge
from asyncguard.lint.project import Project
from asyncguard.lint.rule import rules_by_category

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
IGNORE_COMMENT = re.compile(r"#\s*asyncguard:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
class SourceError(Exception):
    """The file cannot be checked; the message is the reason shown in its AG001 finding."""


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
            except (cst.ParserSyntaxError, SyntaxError, RecursionError, MemoryError, ValueError):
                pass
        return [] if reason is None else [not_checked(path, *reason)]
    try:
        module_node = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        return [not_checked(path, *syntax_error_reason(text, error))]
    except (SyntaxError, RecursionError, MemoryError, ValueError) as error:  # libcst's CSTValidationError too
        return [not_checked(path, f"cannot parse: {type(error).__name__}: {error}", 1, 1)]
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


