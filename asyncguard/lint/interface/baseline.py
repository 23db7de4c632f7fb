"""Baselines for gradual adoption: record today's findings, then report only new ones.

A finding is matched by its file, code, where it runs (context) and the text of its line, not by its line number:
a baselined call stays matched when lines above it are added or removed. Identical lines count: a baseline that
holds two matching findings lets two through, a third is new.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from asyncguard import __version__
from asyncguard.atomic import write_atomically
from asyncguard.lint.findings import Finding, source_lines

BASELINE_VERSION = 1
NOT_BASELINED = frozenset({"AG002"})
"""A crash of the checker is never accepted as the way things are."""
SOURCE_SUFFIXES = (".py", ".pyi", ".pyw")
"""Python source: never overwritten by a baseline, whether it is being checked or not."""


class BaselineError(ValueError):
    """A baseline file that cannot be read, or may not be written: reported in one line, exit status 2."""


def fingerprint(finding: Finding, line_text: str) -> str:
    key = "\0".join([finding.path, finding.code, finding.context, " ".join(line_text.split())])
    return hashlib.blake2b(key.encode("utf-8"), digest_size=10).hexdigest()


def line_texts(findings: Iterable[Finding]) -> dict[tuple[str, int], str]:
    """The text of each finding's line, each file read once."""
    texts: dict[tuple[str, int], str] = {}
    lines_of: dict[str, list[str]] = {}
    for finding in findings:
        if finding.path not in lines_of:
            lines_of[finding.path] = source_lines(finding.path)
        lines = lines_of[finding.path]
        texts[(finding.path, finding.line)] = lines[finding.line - 1] if 0 < finding.line <= len(lines) else ""
    return texts


def fingerprints(findings: Sequence[Finding]) -> list[str]:
    texts = line_texts(findings)
    return [fingerprint(f, texts[(f.path, f.line)]) for f in findings]


def refuse_over_source(path: Path, checked: Iterable[Path]) -> None:
    """A baseline written over source code would destroy it (`--write-baseline app.py` for `--baseline`): refuse a
    Python file, and any file being checked, also through a symbolic link."""
    if path.suffix.lower() in SOURCE_SUFFIXES:
        raise BaselineError(f"refusing to write the baseline over {path}: a Python source file")
    target = os.path.realpath(path)
    if any(os.path.realpath(source) == target for source in checked):
        raise BaselineError(f"refusing to write the baseline over {path}: a file being checked")


def write_baseline(path: Path, findings: Sequence[Finding]) -> int:
    """Record the findings (what the baseline will let through); returns how many. The caller has refused a `path`
    that is source code (`refuse_over_source`) before the run."""
    kept = [f for f in findings if f.code not in NOT_BASELINED]
    entries = [{"fingerprint": fp, "path": f.path, "code": f.code, "line": f.line, "message": f.message}
               for f, fp in zip(kept, fingerprints(kept))]
    payload = {"version": BASELINE_VERSION, "asyncguard": __version__, "findings": entries}
    write_atomically(path, json.dumps(payload, indent=2) + "\n")
    return len(entries)


def read_baseline(path: Path) -> Counter[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise BaselineError(f"baseline {path} is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION or not isinstance(
            data.get("findings"), list):
        raise BaselineError(f"baseline {path} is not an asyncguard baseline (version {BASELINE_VERSION})")
    try:
        return Counter(entry["fingerprint"] for entry in data["findings"])
    except (KeyError, TypeError):
        raise BaselineError(f"baseline {path} has an entry without a fingerprint") from None


def new_findings(findings: Sequence[Finding], baseline: Counter[str]) -> tuple[list[Finding], int]:
    """The findings the baseline does not hold, and how many it held."""
    remaining = Counter(baseline)
    new, known = [], 0
    for finding, fp in zip(findings, fingerprints(findings)):
        if finding.code not in NOT_BASELINED and remaining[fp] > 0:
            remaining[fp] -= 1
            known += 1
        else:
            new.append(finding)
    return new, known
