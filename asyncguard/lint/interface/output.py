"""Output formats of `asyncguard check`: each a function from findings to text (`full` reads the lines it shows)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence
from xml.etree import ElementTree

from asyncguard import __version__
from asyncguard.lint.findings import Finding, source_lines
from asyncguard.lint.interface.baseline import fingerprints
from asyncguard.lint.rule import all_rules, rules_by_code

BOLD, RED, BLUE, RESET = "\x1b[1m", "\x1b[31m", "\x1b[34m", "\x1b[0m"

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
README_URL = "https://github.com/asyncguard/asyncguard"
ROOT_BASE = "PROJECTROOT"
FINGERPRINT = "asyncguard/v1"
"""The key of a result's partial fingerprint: the baseline's (path, rule, context and the line's text)."""


def summary(findings: Sequence[Finding], files_checked: int) -> dict:
    by_code = Counter(f.code for f in findings)
    return {
        "files_checked": files_checked,
        "files_with_findings": len({f.path for f in findings}),
        "findings": len(findings),
        "by_code": dict(sorted(by_code.items())),
        "internal_errors": by_code.get("AG002", 0),
    }


def format_concise(findings: Sequence[Finding], files_checked: int, quiet: bool = False, color: bool = False,
                   **_) -> str:
    """`path:line:col: CODE message`, a finding a line (ruff's `concise`)."""
    lines = [header(f, color) for f in findings]
    return "\n".join(lines + totals(findings, files_checked, quiet)) + ("\n" if lines or not quiet else "")


def format_full(findings: Sequence[Finding], files_checked: int, quiet: bool = False, color: bool = False,
                buffers: dict[str, str] | None = None, **_) -> str:
    """Each finding with its code, the call marked, and the chain that reaches it (ruff's `full`). `buffers`:
    texts checked in place of their files (`--stdin-filename`), by shown path, so the excerpt is what was checked."""
    blocks, files = [], {path: text.splitlines() for path, text in (buffers or {}).items()}
    for finding in findings:
        lines = files.setdefault(finding.path, source_lines(finding.path))
        block = [header(finding, color)]
        if 0 < finding.line <= len(lines):
            block += excerpt(finding, lines, color)
        if finding.chain:
            steps = " → ".join(f"{step['name']} ({step['path']}:{step['line']})" for step in finding.chain)
            block.append(f"  {paint('=', BLUE, color)} chain: {steps}")
        blocks.append("\n".join(block) + "\n")
    return "\n".join(blocks + ["\n".join(totals(findings, files_checked, quiet)) + "\n"] * (not quiet))


def excerpt(finding: Finding, lines: list[str], color: bool) -> list[str]:
    """The line before, the call's lines (marked) and the line after, with a gutter of line numbers."""
    first, last = max(1, finding.line - 1), min(len(lines), max(finding.end_line, finding.line) + 1)
    width = len(str(last))
    gutter = lambda number="": paint(f"{number:>{width}} |", BLUE, color)  # noqa: E731
    shown = [gutter()]
    for number in range(first, last + 1):
        text = lines[number - 1].expandtabs(1)
        shown.append(f"{gutter(number)} {text}".rstrip())
        if number == finding.line:
            start = max(finding.column, 1)
            end = finding.end_column if finding.end_line == finding.line else len(text) + 1
            shown.append(f"{gutter()} {' ' * (start - 1)}{paint('^' * max(1, end - start), BOLD + RED, color)} "
                         f"{paint(finding.code, BOLD + RED, color)}")
    return shown + [gutter()]


def header(finding: Finding, color: bool) -> str:
    """`path:line:col: CODE message`."""
    return (f"{paint(finding.path, BOLD, color)}:{finding.line}:{finding.column}: "
            f"{paint(finding.code, BOLD + RED, color)} {text_message(finding)}")


def paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{RESET}" if color else text


def totals(findings: Sequence[Finding], files_checked: int, quiet: bool) -> list[str]:
    if quiet:
        return []
    count = len(findings)
    if count:
        return [f"Found {count} finding{'s' * (count != 1)} in {len({f.path for f in findings})} "
                f"of {files_checked} file{'s' * (files_checked != 1)}."]
    return [f"All checks passed ({files_checked} file{'s' * (files_checked != 1)})."]


def text_message(finding: Finding) -> str:
    return f"{finding.message}; use {finding.suggestion}" if finding.suggestion else finding.message


def format_statistics(findings: Sequence[Finding], as_json: bool = False) -> str:
    counts = Counter(f.code for f in findings)
    rules = rules_by_code()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if as_json:
        return json.dumps([{"code": code, "name": rules[code].name, "count": count} for code, count in ordered],
                          indent=2) + "\n"
    width = max((len(str(n)) for n in counts.values()), default=1)
    return "".join(f"{count:>{width}}\t{code}\t{rules[code].name}\n" for code, count in ordered)


def format_json(findings: Sequence[Finding], files_checked: int, **_) -> str:
    """One finding a line: as readable as an indented document, and written by json's C encoder (an indented
    dump is pure Python, a third of a warm run over a large project)."""
    rows = ",\n".join(f"    {json.dumps(f.to_json())}" for f in findings)
    return (f'{{\n  "version": {json.dumps(__version__)},\n  "findings": [' + (f"\n{rows}\n  " if rows else "")
            + f'],\n  "summary": {json.dumps(summary(findings, files_checked))}\n}}\n')


def format_json_lines(findings: Sequence[Finding], files_checked: int, **_) -> str:
    """One JSON object a line, nothing else: for `jq` and log shippers."""
    return "".join(json.dumps(f.to_json()) + "\n" for f in findings)


def format_gitlab(findings: Sequence[Finding], files_checked: int, root: Path | None = None, **_) -> str:
    """GitLab's Code Quality report: paths from the repository's root, the baseline's fingerprint (stable when
    lines shift)."""
    base = repository_root(root or Path.cwd())

    return json.dumps([
        {"description": f"{f.code} {text_message(f)}", "check_name": f.code, "fingerprint": mark, "severity": "major",
         "location": {"path": from_root(f.path, base) or f.path, "lines": {"begin": f.line, "end": f.end_line}}}
        for f, mark in zip(findings, distinct_fingerprints(findings))
    ], indent=2) + "\n"


def format_junit(findings: Sequence[Finding], files_checked: int, **_) -> str:
    """JUnit XML, as ruff writes it: a test suite per file with findings, a failed test case per finding."""
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        by_file.setdefault(finding.path, []).append(finding)
    suites = ElementTree.Element("testsuites", name="asyncguard", tests=str(len(findings)),
                                 failures=str(len(findings)), errors="0")
    for path, found in by_file.items():
        suite = ElementTree.SubElement(suites, "testsuite", name=path, tests=str(len(found)),
                                       failures=str(len(found)), errors="0")
        for f in found:
            case = ElementTree.SubElement(suite, "testcase", name=f"org.asyncguard.{f.code}", classname=path,
                                          line=str(f.line), column=str(f.column))
            failure = ElementTree.SubElement(case, "failure", message=text_message(f))
            failure.text = f"line {f.line}, col {f.column}, {f.code} {text_message(f)}"
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def format_sarif(findings: Sequence[Finding], files_checked: int, root: Path | None = None, **_) -> str:
    """SARIF 2.1.0 for code scanning: paths relative to the repository's root (`uriBaseId`; the project's where it
    is in none), so the report does not depend on where the command ran and code scanning finds each file, and the
    baseline's fingerprint, so an alert survives a line inserted above it."""
    from asyncguard.lint.interface.docs import rule_doc

    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    root = repository_root(root or Path.cwd())
    driver = {
        "name": "asyncguard",
        "version": __version__,
        "informationUri": README_URL,
        "rules": [
            {
                "id": rule.code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary()},
                "fullDescription": {"text": rule.what_it_does()},
                "help": {"text": rule_doc(rule)},
                "helpUri": rule_url(rule.code),
                "defaultConfiguration": {"level": "error"},
            }
            for rule in rules
        ],
    }

    def artifact(path: str) -> dict:
        shown = from_root(path, root)
        return {"uri": shown, "uriBaseId": ROOT_BASE} if shown else {"uri": Path(path).resolve().as_uri()}

    results = []
    for finding, mark in zip(findings, distinct_fingerprints(findings)):
        result = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": "error",
            "message": {"text": text_message(finding)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact(finding.path),
                        "region": {
                            "startLine": finding.line,
                            "startColumn": finding.column,
                            "endLine": finding.end_line,
                            "endColumn": finding.end_column,
                        },
                    }
                }
            ],
            "partialFingerprints": {FINGERPRINT: mark},
        }
        if finding.chain:
            result["codeFlows"] = [{"threadFlows": [{"locations": [
                {"location": {"physicalLocation": {"artifactLocation": artifact(step["path"]),
                                                   "region": {"startLine": max(1, step["line"])}},
                              "message": {"text": step["name"]}}}
                for step in finding.chain
            ]}]}]
        results.append(result)
    run = {"tool": {"driver": driver}, "originalUriBaseIds": {ROOT_BASE: {"uri": root.as_uri() + "/"}},
           "results": results}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def distinct_fingerprints(findings: Sequence[Finding]) -> list[str]:
    """The baseline's fingerprints, the second and later of identical ones (the same line twice in a function)
    numbered, so that no two alerts merge; still stable when lines move."""
    seen: Counter = Counter()
    marks = []
    for mark in fingerprints(findings):
        marks.append(f"{mark}:{seen[mark]}" if seen[mark] else mark)
        seen[mark] += 1
    return marks


def from_root(path: str, root: Path) -> str | None:
    """`path` relative to `root` (resolved), None when it is not under it."""
    absolute = Path(path).resolve()
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else None


def repository_root(start: Path) -> Path:
    """The checkout the project is in (code scanning resolves SARIF paths against it), else the project itself."""
    start = start.resolve()
    return next((directory for directory in (start, *start.parents) if (directory / ".git").exists()), start)


def rule_url(code: str) -> str:
    """The rule's row in the README's table (an anchor of its own)."""
    return f"{README_URL}#{code.lower()}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding], files_checked: int, **_) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""
    return "".join(
        f"::error file={_escape_property(f.path)},line={f.line},col={f.column},endLine={f.end_line},"
        f"endColumn={f.end_column},title={_escape_property('asyncguard ' + f.code)}::"
        f"{_escape_data(f.code + ' ' + text_message(f))}\n"
        for f in findings
    )


def format_html(findings: Sequence[Finding], files_checked: int, **_) -> str:
    """A self-contained page of the findings with their code (needs Jinja2, part of the `bench` extra)."""
    from asyncguard.bench.evidence import as_static
    from asyncguard.report.html import render_lint

    return render_lint(as_static(findings), files_checked)


FORMATTERS: dict[str, Callable[..., str]] = {
    "full": format_full,
    "concise": format_concise,
    "text": format_concise,
    "json": format_json,
    "json-lines": format_json_lines,
    "sarif": format_sarif,
    "github": format_github,
    "gitlab": format_gitlab,
    "junit": format_junit,
    "html": format_html,
}
"""`text` is `concise`'s older name."""
