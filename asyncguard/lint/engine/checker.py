"""Checking one file: decode, parse (once, with `ast`), analyse, apply suppressions. Never raises for any input.

`check_source` is the pure core (text in, findings out) used by the tests and the rule examples.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from typing import Sequence

from asyncguard.lint.engine.analysis import AnalysisResult, analyze
from asyncguard.lint.interface.files import SourceFile
from asyncguard.lint.findings import Finding, internal_error, is_implicit, not_checked, shown_call
from asyncguard.lint.knowledge.base import Knowledge, build_knowledge
from asyncguard.lint.engine.program import INDIRECT, LibraryCalls, ModuleRecord, Program
from asyncguard.lint.engine.names import ABSTRACT_BASES, Project
from asyncguard.lint.rule import rules_by_category
from asyncguard.lint.engine.syntax import definition_lines, dotted_name, parse

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
UNUSED_NOQA = "AG003"
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


def parsed(text: str, module: str, project: Project | None) -> ast.Module | tuple[str, int, int] | None:
    """The text's tree (the project's, where it already parsed the same text); else why it is not Python, with a
    position; None for valid syntax too new to analyse (`asyncguard.lint.engine.syntax.parse`)."""
    try:
        return project.parse(module, text) if project is not None else parse(text)
    except SyntaxError as error:
        return f"syntax error: {error.msg}", error.lineno or 1, error.offset or 1
    except (ValueError, MemoryError, RecursionError) as error:
        return f"cannot parse: {type(error).__name__}", 1, 1


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
    return any(line_suppresses(lines, number, finding.code) for number in {finding.line, finding.end_line})


def line_suppresses(lines: Sequence[str], number: int, code: str) -> bool:
    codes = suppressed_codes(lines[number - 1]) if 1 <= number <= len(lines) else None
    return codes is not None and ("*" in codes or code in codes)


@dataclass
class FileAnalysis:
    """One file's part of the run: its own findings, and what the whole-program pass needs of it."""

    findings: list[Finding] = field(default_factory=list)
    summary: dict | None = None
    """`{"functions": {qualified name: {"line", "blocking", "calls"}}, "classes": {name: [bases]}, ...}` (the shape
    is `asyncguard.lint.interface.cache.SUMMARY`); None when the
    file was not analysed (no `async` in it: only its syntax was checked)."""
    loop_calls: list[list] = field(default_factory=list)
    """`[callee, line, column, end line, end column, context, written, arguments]` of every call on the loop of a
    project function; `written` is the called expression as the source has it (`payments.charge`), or "";
    `arguments` the known instance types of its arguments by position or keyword."""


def check_source(text: str, path: str = "<string>", module: str = "module",
                 knowledge: Knowledge | None = None, enabled: frozenset[str] | None = None,
                 project: Project | None = None) -> list[Finding]:
    """Findings for one module's source text, suppressions applied, sorted by position; blocking calls reached
    through the module's own helpers included (the runner does this across modules)."""
    analysis = analyse_source(text, path, module, knowledge, enabled, project)
    record = ModuleRecord(module, path, analysis.summary or {}, analysis.loop_calls)
    prefix = f"{module}."
    indirect = Program(enabled, module_of=lambda name: module if name.startswith(prefix) else None,
                       load=lambda modules: [], library=LibraryCalls(knowledge or build_knowledge()))
    indirect.add(record)
    return sorted(analysis.findings + indirect.findings(), key=lambda f: f.sort_key)


def analyse_source(text: str, path: str = "<string>", module: str = "module",
                   knowledge: Knowledge | None = None, enabled: frozenset[str] | None = None,
                   project: Project | None = None) -> FileAnalysis:
    if "async" not in text and "on_event" not in text:  # nothing of it runs on the loop (but a sync startup
        return FileAnalysis()  # handler): not even parsed; one that a chain reaches is parsed then, for its summary
    knowledge = knowledge or build_knowledge()
    tree = parsed(text, module, project)
    if isinstance(tree, tuple):
        return FileAnalysis([not_checked(path, *tree)])
    if tree is None:  # valid, but newer than this Python reads: say so, never pass it silently
        return FileAnalysis([not_checked(path, f"syntax newer than Python {sys.version_info.major}."
                                               f"{sys.version_info.minor} reads (run asyncguard with a newer "
                                               f"Python to check it)")])
    result = analyze(tree, module, knowledge, text, project, enabled is None or INDIRECT in enabled)
    by_category = rules_by_category()
    lines = text.splitlines()
    findings = []
    for raw, (line, column, end_line, end_column) in result.findings:
        rule = by_category[raw.api.category]
        if enabled is not None and rule.code not in enabled:
            continue
        shown = shown_call(raw.call)
        context = result.facts.describe(raw.frame)
        message = rule.message.format(call=shown, context=context)
        if raw.api.read or is_implicit(raw.call):  # a property read or a loop, not a written call
            message = message.replace(f"`{shown}()`", f"`{shown}`")
        if raw.api.message:
            message = f"{raw.api.message}: `{shown}()` {context}"
        if raw.api.learned:
            message = f"`{shown}()` blocks the event loop {context} ({raw.api.learned})"
        finding = Finding(path=path, line=line, column=column, end_line=end_line, end_column=end_column,
                          code=rule.code, message=message, category=raw.api.category,
                          context=context.removeprefix("in "), call=raw.call.replace("builtins.", ""),
                          suggestion=raw.api.use)
        if not is_suppressed(finding, lines):
            findings.append(finding)
    if (enabled is None or UNUSED_NOQA in enabled) and ("noqa" in text or "asyncguard:" in text):
        findings += unused_suppressions(path, text, result, enabled)
    loop_calls = [[call.callee, *span, result.facts.describe(call.frame).removeprefix("in "),
                   written_call(call.node), call.arguments]
                  for call, span in result.loop_calls if not line_suppresses(lines, span[0], INDIRECT)]
    return FileAnalysis(sorted(findings, key=lambda f: f.sort_key), summarize(result, module, tree, lines),
                        loop_calls)


def unused_suppressions(path: str, text: str, result: AnalysisResult, enabled: frozenset[str] | None) -> list[Finding]:
    """AG003 for each asyncguard code in a suppression comment that nothing on its line would be reported for:
    a call on the loop, a blocking call in a helper (a suppression there clears the chains through it), a lock."""
    by_category = rules_by_category()
    reported: dict[int, set[str]] = {}
    for raw, span in [*result.findings, *result.lock_uses,
                      *(located for _, blocking in result.summaries.values() for located in blocking)]:
        for line in {span[0], span[2]}:
            reported.setdefault(line, set()).add(by_category[raw.api.category].code)
    for _, span in result.loop_calls:
        reported.setdefault(span[0], set()).add(INDIRECT)
    for calls in result.held_calls.values():
        for call, line in calls:
            reported.setdefault(line, set()).add(by_category[call.raw.api.category].code if call.raw else INDIRECT)
    unused = []
    for line, column, codes in suppression_comments(text):
        for code in sorted(code for code in codes if code.startswith("AG") and (enabled is None or code in enabled)
                           and code not in reported.get(line, ())):
            unused.append(Finding(path=path, line=line, column=column, end_line=line, end_column=column + 1,
                                  code=UNUSED_NOQA, message=f"unused suppression: `{code}` (nothing on this line is "
                                                            f"reported for it)", category="suppression",
                                  call=code))
    return unused


def suppression_comments(text: str) -> list[tuple[int, int, set[str]]]:
    """`(line, column, codes)` of every comment that suppresses named codes (real comments: not in strings)."""
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                codes = suppressed_codes(token.string)
                if codes and "*" not in codes:
                    found.append((token.start[0], token.start[1] + 1, codes))
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def written_call(node: ast.Call | ast.Attribute) -> str:
    """What to hand `asyncio.to_thread` for the call: the function as written, or a read of a property."""
    if isinstance(node, ast.Attribute):
        return f"lambda: {dotted_name(node)}" if dotted_name(node) else ""
    return dotted_name(node.func) or ""


def summarize(result: AnalysisResult, module: str, tree: ast.Module, lines: Sequence[str]) -> dict:
    """The sync functions' summaries as plain data (cached with the file); a blocking call under `# noqa` is left
    out, so a suppression in a helper also clears the calls that reach it."""
    by_category = rules_by_category()
    definitions = definition_lines(tree) if result.summaries or result.class_bases else {}
    functions = {}
    for name, (summary, blocking) in result.summaries.items():
        kept = [[shown_call(raw.call), span[0], by_category[raw.api.category].code, raw.api.use, raw.api.weak,
                 raw.lock]  # a lock blocks only if a critical section under it does
                for raw, span in sorted(blocking, key=lambda located: located[1])  # the first in the source first
                if not line_suppresses(lines, span[0], by_category[raw.api.category].code)]
        on_parameters = sorted({(parameter, result.parameter_lines[id(call)], steps)
                                for parameter, steps, call in summary.parameter_calls})
        if kept or summary.calls or summary.self_calls or on_parameters:
            functions[name] = {"line": definitions.get(name[len(module) + 1:], 1), "blocking": kept,
                               "calls": {callee: result.call_lines[id(call)]
                                         for callee, call in sorted(summary.calls.items())}}
            if summary.cached:  # "once": it takes nothing, so whatever it does, it does on the first call only
                functions[name]["cached"] = True if summary.parameters else "once"
            if summary.self_calls:
                functions[name]["self_calls"] = {method: result.call_lines[id(call)]
                                                 for method, call in sorted(summary.self_calls.items())}
            if on_parameters or summary.forwards:
                functions[name]["parameters"] = summary.parameters
            if on_parameters:
                functions[name]["parameter_calls"] = [[parameter, line, [list(step) for step in steps]]
                                                      for parameter, line, steps in on_parameters]
            if summary.forwards:
                functions[name]["forwards"] = [[callee, line, forwarded]
                                               for callee, forwarded, line in summary.forwards]
    methods: dict[str, list[str]] = {}
    for key in definitions:
        owner, _, method = key.rpartition(".")
        methods.setdefault(owner, []).append(method)
    derived = {}
    for name, bases in result.class_bases.items():
        if bases:  # where an inherited third-party method may be called: its line, and the methods it overrides
            local = name[len(module) + 1:]
            derived[name] = {"line": definitions.get(local, 1), "methods": sorted(methods.get(local, []))}
            if ABSTRACT_BASES & set(bases):  # an interface: its methods run in the classes that implement it
                derived[name]["abstract"] = True
    summary = {"functions": functions, "classes": result.class_bases, "derived": derived}
    locks = [[raw.lock, shown_call(raw.call), *span, result.facts.describe(raw.frame).removeprefix("in "), raw.api.use]
             for raw, span in result.lock_uses
             if not line_suppresses(lines, span[0], by_category[raw.api.category].code)]
    held = {}
    for lock, calls in result.held_calls.items():
        entries = [[f"{module}.{call.holder.qualname}", line, *([shown_call(call.raw.call),
                    by_category[call.raw.api.category].code, call.raw.api.weak] if call.raw else [call.callee])]
                   for call, line in calls
                   if call.raw is None or not line_suppresses(lines, line, by_category[call.raw.api.category].code)]
        if entries:
            held[lock] = entries
    if locks:
        summary["locks"] = locks
    if held:
        summary["held"] = held
    return summary


def summarize_source(text: str, module: str, knowledge: Knowledge, project: Project | None = None) -> dict:
    """The summary of a module the whole-program pass reaches but the run did not analyse; {} if unreadable."""
    tree = parsed(text, module, project)
    if not isinstance(tree, ast.Module):
        return {}
    try:
        result = analyze(tree, module, knowledge, text, project)
    except RecursionError:  # too deeply nested to analyse: reported when the module is checked itself
        return {}
    return summarize(result, module, tree, text.splitlines())


def analyse_bytes(data: bytes, source: SourceFile, knowledge: Knowledge, enabled: frozenset[str],
                  project: Project | None = None) -> FileAnalysis:
    """Never raises: every failure becomes an AG001 (the input) or AG002 (the checker) finding."""
    try:
        text = decode(data)
    except SourceError as error:
        return FileAnalysis([not_checked(source.display, str(error))])
    try:
        return analyse_source(text, source.display, source.module, knowledge, enabled, project)
    except RecursionError:
        return FileAnalysis([not_checked(source.display, "too deeply nested to analyse")])
    except Exception as error:  # a bug in asyncguard: report it, keep going
        return FileAnalysis([internal_error(source.display, error)])
