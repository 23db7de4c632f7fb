from __future__ import annotations

import io
import re
import signal
import tokenize
from pathlib import Path

import pytest

from asyncguard.lint.knowledge.base import build_knowledge
from asyncguard.lint.engine.checker import check_source

@pytest.fixture(autouse=True, scope="session")
def hangup_handled_by_default():
    """Under `nohup` SIGHUP is ignored, and an ignored signal stays ignored in every child, where asyncguard leaves it
    so (as `nohup` asks): the tests that send it to a run they start need the default disposition to inherit."""
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


EXPECTATION = re.compile(r"#\s*(AG\d{3})\b")
ROOT = Path(__file__).resolve().parent.parent


def expected_findings(text: str) -> set[tuple[int, str]]:
    """Inline expectations: a line whose comment names codes (`# AG101`) must be reported with those codes."""
    found = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                found.update((token.start[0], code) for code in EXPECTATION.findall(token.string))
    except (tokenize.TokenError, SyntaxError):  # a deliberately broken example: read its comments by hand
        for number, line in enumerate(text.splitlines(), start=1):
            found.update((number, code) for code in EXPECTATION.findall(line.partition("#")[2]))
    return found


def reported(text: str, config: dict | None = None, module: str = "example") -> set[tuple[int, str]]:
    config = config or {}
    knowledge = build_knowledge(config.get("extra-blocking-calls"), config.get("allowed-calls", ()))
    return {(f.line, f.code) for f in check_source(text, module=module, knowledge=knowledge)}


@pytest.fixture(scope="session")
def knowledge():
    return build_knowledge()


@pytest.fixture(autouse=True)
def no_outer_environment(monkeypatch, tmp_path_factory):
    """A venv the tests were started from is not the checked projects' environment, and what a test learns is
    cached in a directory of its own."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
