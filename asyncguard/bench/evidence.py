"""The static half of the evidence: what `asyncguard check` says of the measured app, saved with the results."""

from __future__ import annotations

from pathlib import Path

from asyncguard.bench.results import StaticFinding

EXCERPT_CONTEXT = 3
"""Lines shown above and below a finding."""


def app_directory(app: str, app_dir: Path | None) -> Path | None:
    """Where the app's code is: `--app-dir`, else the top-level package or module of `module:attr` under `.`."""
    if app_dir is not None:
        return app_dir
    top = app.partition(":")[0].split(".")[0]
    for candidate in (Path(top), Path(f"{top}.py")):
        if candidate.exists():
            return candidate
    return None


def static_findings(directory: Path) -> list[StaticFinding]:
    """Every finding under `directory`, with its surrounding lines (AG001/AG002 included: they are findings too)."""
    from asyncguard.lint.interface.config import Settings
    from asyncguard.lint.interface.files import DEFAULT_EXCLUDES, discover
    from asyncguard.lint.interface.runner import run

    root = directory if directory.is_dir() else directory.parent
    result = run(discover([str(directory)], root, list(DEFAULT_EXCLUDES)), Settings(project_root=root),
                 use_cache=False)
    return as_static(result.findings)


def as_static(findings) -> list[StaticFinding]:
    """Checker findings with the lines around them (read now, each file once, so the report needs no source)."""
    from asyncguard.lint.findings import source_lines
    from asyncguard.lint.rule import rules_by_code

    read: dict[str, list[str]] = {}
    evidence = []
    for finding in findings:
        if finding.path not in read:
            read[finding.path] = source_lines(finding.path)
        start, lines = excerpt(read[finding.path], finding.line)
        evidence.append(StaticFinding(
            code=finding.code, rule=rules_by_code()[finding.code].name, message=finding.message,
            suggestion=finding.suggestion, path=finding.path, line=finding.line, column=finding.column,
            context=finding.context, excerpt_start=start, excerpt=lines, chain=list(finding.chain)))
    return evidence


def excerpt(text: list[str], line: int) -> tuple[int, list[str]]:
    """The lines around `line` (1-based), without a blank tail under it."""
    first = max(1, line - EXCERPT_CONTEXT)
    lines = text[first - 1:line + EXCERPT_CONTEXT]
    while len(lines) > line - first + 1 and not lines[-1].strip():
        lines.pop()
    return first, lines
