"""The realistic fixture service is the checker's ground truth: exactly the marked lines are reported."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import discover
from asyncguard.lint.interface.runner import run
from conftest import ROOT, expected_findings

FIXTURES = ROOT / "tests" / "fixtures"
CORPORA = sorted(p for p in FIXTURES.iterdir() if p.is_dir())


def check_tree(tree: Path) -> set[tuple[str, int, str]]:
    settings = Settings(project_root=tree)
    result = run(discover([str(tree)], tree, []), settings, use_cache=False)
    return {(Path(f.path).resolve().relative_to(tree).as_posix(), f.line, f.code) for f in result.findings}


def expectations(tree: Path) -> set[tuple[str, int, str]]:
    return {
        (file.relative_to(tree).as_posix(), line, code)
        for file in sorted(tree.rglob("*.py"))
        for line, code in expected_findings(file.read_text(encoding="utf-8"))
    }


@pytest.mark.parametrize("tree", CORPORA, ids=[p.name for p in CORPORA])
def test_reports_exactly_the_marked_lines(tree):
    reported, expected = check_tree(tree), expectations(tree)
    assert sorted(reported - expected) == [], "reported but not marked (false positives)"
    assert sorted(expected - reported) == [], "marked but not reported (missed)"


ASYNC_SYNTAX = [(re.compile(r"\basync\s+(def|with|for)\b"), r"\1"), (re.compile(r"\bawait\s+"), "")]


@pytest.mark.parametrize("tree", CORPORA, ids=[p.name for p in CORPORA])
def test_no_findings_once_nothing_is_async(tree, tmp_path):
    """flake8-async's property: with every coroutine made synchronous, nothing runs on an event loop."""
    copy = tmp_path / tree.name
    shutil.copytree(tree, copy)
    for file in copy.rglob("*.py"):
        text = file.read_text(encoding="utf-8")
        for pattern, replacement in ASYNC_SYNTAX:
            text = pattern.sub(replacement, text)
        file.write_text(text, encoding="utf-8")
    assert check_tree(copy) == set()
