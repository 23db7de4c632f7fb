"""Output formats of `asyncguard check`: each a pure function from findings to text."""

from __future__ import annotations

import json
from collections import Counter
from typing import Callable, Sequence

from asyncguard import __version__
from asyncguard.lint.findings import Finding
from asyncguard.lint.rule import all_rules, rules_by_code

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS_URL = "https://github.com/asyncguard/asyncguard#rules"


def summary(findings: Sequence[Finding], files_checked: int) -> dict:
    by_code = Counter(f.code for f in findings)
    return {
        "files_checked": files_checked,
        "files_with_findings": len({f.path for f in findings}),
        "findings": len(findings),
        "by_code": dict(sorted(by_code.items())),
        "internal_errors": by_code.get("AG002", 0),
    }


def format_text(findings: Sequence[Finding], files_checked: int, quiet: bool = False) -> str:
    lines = [f"{f.path}:{f.line}:{f.column}: {f.code} {text_message(f)}" for f in findings]
    if not quiet:
        count = len(findings)
        if count:
            lines.append(f"Found {count} finding{'s' * (count != 1)} in {len({f.path for f in findings})} "
                         f"of {files_checked} file{'s' * (files_checked != 1)}.")
        else:
            lines.append(f"All checks passed ({files_checked} file{'s' * (files_checked != 1)}).")
    return "\n".join(lines) + ("\n" if lines else "")


def text_message(finding: Finding) -> str:
    return f"{finding.message}; use {finding.suggestion}" if finding.suggestion else finding.message


def format_statistics(findings: Sequence[Finding]) -> str:
    counts = Counter(f.code for f in findings)
    rules = rules_by_code()
    width = max((len(str(n)) for n in counts.values()), default=1)
    return "".join(
        f"{count:>{width}}\t{code}\t{rules[code].name}\n" for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def format_json(findings: Sequence[Finding], files_checked: int, quiet: bool = False) -> str:
    """One finding a line: as readable as an indented document, and written by json's C encoder (an indented
    dump is pure Python, a third of a warm run over a large project)."""
    rows = ",\n".join(f"    {json.dumps(f.to_json())}" for f in findings)
    return (f'{{\n  "version": {json.dumps(__version__)},\n  "findings": [' + (f"\n{rows}\n  " if rows else "")
            + f'],\n  "summary": {json.dumps(summary(findings, files_checked))}\n}}\n')


def format_sarif(findings: Sequence[Finding], files_checked: int, quiet: bool = False) -> str:
    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    driver = {
        "name": "asyncguard",
        "version": __version__,
        "informationUri": DOCS_URL,
        "rules": [
            {
                "id": rule.code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary()},
                "fullDescription": {"text": rule.what_it_does()},
                "help": {"text": rule.why},
                "helpUri": f"{DOCS_URL}-{rule.code.lower()}",
                "defaultConfiguration": {"level": "error"},
            }
            for rule in rules
        ],
    }
    results = []
    for finding in findings:
        result = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": "error",
            "message": {"text": text_message(finding)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.path},
                        "region": {
                            "startLine": finding.line,
                            "startColumn": finding.column,
                            "endLine": finding.end_line,
                            "endColumn": finding.end_column,
                        },
                    }
                }
            ],
        }
        if finding.chain:
            result["codeFlows"] = [{"threadFlows": [{"locations": [
                {"location": {"physicalLocation": {"artifactLocation": {"uri": step["path"]},
                                                   "region": {"startLine": step["line"]}},
                              "message": {"text": step["name"]}}}
                for step in finding.chain
            ]}]}]
        results.append(result)
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(log, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding], files_checked: int, quiet: bool = False) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""
    return "".join(
        f"::error file={_escape_property(f.path)},line={f.line},col={f.column},endLine={f.end_line},"
        f"endColumn={f.end_column},title={_escape_property('asyncguard ' + f.code)}::"
        f"{_escape_data(f.code + ' ' + text_message(f))}\n"
        for f in findings
    )


def format_html(findings: Sequence[Finding], files_checked: int, quiet: bool = False) -> str:
    """A self-contained page of the findings with their code (needs Jinja2, part of the `bench` extra)."""
    from asyncguard.bench.evidence import as_static
    from asyncguard.report.html import render_lint

    return render_lint(as_static(findings), files_checked)


FORMATTERS: dict[str, Callable[..., str]] = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "github": format_github,
    "html": format_html,
}
