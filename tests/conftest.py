from __future__ import annotations

import re
from pathlib import Path

import pytest

from asyncguard.lint.knowledge import build_knowledge
from asyncguard.lint.checker import check_source

EXPECTATION = re.compile(r"#\s*(AG\d{3})\b")
ROOT = Path(__file__).resolve().parent.parent


def expected_findings(text: str) -> set[tuple[int, str]]:
    """Inline expectations: a line ending in `# AG101` (or several codes) must be reported with those codes."""
    found = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" in line:
            comment = line[line.index("#", line.rfind('"') + 1 if line.count('"') % 2 == 0 else 0):]
            found.update((number, code) for code in EXPECTATION.findall(comment))
    return found


def reported(text: str, config: dict | None = None, module: str = "example") -> set[tuple[int, str]]:
    config = config or {}
    knowledge = build_knowledge(config.get("extra-blocking-calls"), config.get("allowed-calls", ()))
    return {(f.line, f.code) for f in check_source(text, module=module, knowledge=knowledge)}


@pytest.fixture(scope="session")
def knowledge():
    return build_knowledge()
