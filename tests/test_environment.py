"""`check --python`: the project's installed libraries, learned on demand and cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from test_learn import SDK, SERVICE

ASYNCGUARD = [sys.executable, "-m", "asyncguard"]


def install(site: Path, distribution: str, version: str, files: dict[str, str]) -> None:
    """A distribution installed as pip leaves one: its files, and a dist-info whose RECORD lists them."""
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    info = site / f"{distribution}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in [*files, f"{info.name}/METADATA"]))


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "service"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'service'\n")
    (root / "app.py").write_text(SERVICE)
    venv.create(root / ".venv", with_pip=False)
    site = next((root / ".venv" / "lib").glob("python*/site-packages"))
    install(site, "searchsdk", "1.0", SDK)
    return root


def check(root: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ASYNCGUARD, "check", "--format", "json", "--no-cache", *flags, "app.py"], cwd=root,
                          capture_output=True, text=True, timeout=300)


def calls(done: subprocess.CompletedProcess) -> list[tuple[int, str]]:
    return [(f["line"], f["call"]) for f in json.loads(done.stdout)["findings"]]


def test_the_project_venv_is_found_and_its_libraries_learned_once(project):
    first = check(project)
    assert calls(first) == [(10, "searchsdk.Client.search"), (12, "searchsdk.connect"),
                            (13, "searchsdk._query.Request.do")]
    assert "learning 1 installed library" in first.stderr and "searchsdk" in first.stderr
    again = check(project)
    assert calls(again) == calls(first)
    assert "learning" not in again.stderr  # cached


def test_without_an_environment_the_findings_are_the_shipped_knowledge_s(project):
    assert calls(check(project, "--python", "")) == []


def test_an_interpreter_given_by_its_venv_directory(project, tmp_path):
    (project / ".venv").rename(tmp_path / "elsewhere")
    assert calls(check(project)) == []
    assert len(calls(check(project, "--python", str(tmp_path / "elsewhere")))) == 3


def test_a_path_that_is_no_interpreter_is_a_one_line_error(project):
    done = check(project, "--python", "/nonexistent/python")
    assert done.returncode == 2
    assert done.stderr.strip() == "asyncguard: error: --python /nonexistent/python: not an executable Python interpreter"


def test_a_cache_that_cannot_be_written_leaves_the_shipped_knowledge(project, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    done = subprocess.run([*ASYNCGUARD, "check", "--format", "json", "--no-cache", "app.py"], cwd=project,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(blocked)})
    assert done.returncode == 0 and calls(done) == []
    assert "asyncguard: warning: not learning from the project environment" in done.stderr
    assert "Traceback" not in done.stderr


def test_what_was_learned_is_learned_again_by_a_newer_engine(tmp_path, monkeypatch):
    """Learned data is kept per interpreter and per engine: one learned by another version of the engine or of the
    curated base is not read as today's."""
    from asyncguard.lint.knowledge import environment

    python = Path(sys.executable)
    today = environment.learned_directory(python, tmp_path)
    assert environment.learned_directory(python, tmp_path) == today
    monkeypatch.setattr(environment, "learner_digest", lambda: "another engine")
    assert environment.learned_directory(python, tmp_path) != today
