"""Where engineers meet the checker: the repository as a pre-commit hook (`pre-commit try-repo`) and as a GitHub
Action (its steps run here as the runner would run them, without the network: the install and the uploads are the
runner's own)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

BLOCKING = "import time\n\n\nasync def handler():\n    time.sleep(1)\n"
CLEAN = "import asyncio\n\n\nasync def handler():\n    await asyncio.sleep(1)\n"
BIN = str(Path(sys.executable).parent)


def git_project(path: Path, source: str) -> Path:
    path.mkdir()
    (path / "app.py").write_text(source)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["git", "add", "app.py"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "start"],
                   cwd=path, check=True)
    return path


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_try_repo_runs_the_hook_on_the_project(tmp_path):
    """The hook's environment is built from this repository, as pre-commit builds it for a user."""
    home = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "asyncguard", "--all-files"]
    blocked = subprocess.run(command, cwd=git_project(tmp_path / "blocked", BLOCKING), capture_output=True,
                             text=True, env=home, timeout=600)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "app.py:5:5: AG101 `time.sleep()` sleeps on the event loop" in blocked.stdout
    clean = subprocess.run(command, cwd=git_project(tmp_path / "clean", CLEAN), capture_output=True, text=True,
                           env=home, timeout=600)
    assert clean.returncode == 0 and "Passed" in clean.stdout, clean.stdout + clean.stderr


def test_the_hook_checks_the_whole_project():
    hook, = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["types"], hook["pass_filenames"]) == (
        "asyncguard", "python", ["python"], False)


ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")
CONDITION = re.compile(r"inputs\.([\w-]+) == '([^']*)'")


def expand(text: str, context: dict[str, str]) -> str:
    return EXPRESSION.sub(lambda match: context[match.group(1)], text)


def run_steps(project: Path, inputs: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """The action's shell steps after the install, as the runner runs them: `bash -e`, the step's `env`, a
    `GITHUB_OUTPUT` file, expressions expanded from the inputs and earlier steps' outputs."""
    context = {f"inputs.{name}": spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    context.update({f"inputs.{name}": value for name, value in inputs.items()})
    context["github.action_path"] = str(ROOT)
    finished = {}
    for step in ACTION["runs"]["steps"]:
        if "run" not in step or step["name"] == "Install asyncguard":
            continue
        if "if" in step:  # the action's conditions are all `inputs.NAME == 'VALUE'`
            name, value = CONDITION.fullmatch(step["if"]).groups()
            if context[f"inputs.{name}"] != value:
                continue
        output = project / f"output-{len(finished)}"
        output.touch()
        env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "GITHUB_OUTPUT": str(output),
               **{name: expand(str(value), context) for name, value in step.get("env", {}).items()}}
        finished[step["name"]] = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=project, env=env,
                                                capture_output=True, text=True, timeout=300)
        for line in output.read_text().splitlines():
            name, _, value = line.partition("=")
            context[f"steps.{step.get('id')}.outputs.{name}"] = value
    return finished


def test_the_action_checks_uploads_and_then_gates(tmp_path):
    project = tmp_path / "service"
    project.mkdir()
    (project / "app.py").write_text(BLOCKING)
    steps = run_steps(project, {})
    assert steps["Check"].returncode == 0, steps["Check"].stderr  # the upload comes first, findings or not
    log = json.loads((project / "asyncguard.sarif").read_text())
    assert [result["ruleId"] for result in log["runs"][0]["results"]] == ["AG101"]
    gate = steps["Fail on findings"]
    assert gate.returncode == 1 and "::error title=asyncguard::" in gate.stdout
    (project / "app.py").write_text(CLEAN)
    steps = run_steps(project, {})
    assert steps["Fail on findings"].returncode == 0
    assert "Fail on findings" not in run_steps(project, {"fail-on-findings": "false"})


def test_the_action_stops_on_an_error_and_documents_its_inputs(tmp_path):
    steps = run_steps(tmp_path, {"paths": "no-such-dir"})
    assert steps["Check"].returncode == 2 and "::error title=asyncguard::asyncguard check failed (exit 2)" in \
        steps["Check"].stdout
    assert all(spec.get("description") and "default" in spec for spec in ACTION["inputs"].values())
    uses = {step["uses"].split("@")[0]: step.get("with", {}) for step in ACTION["runs"]["steps"] if "uses" in step}
    assert uses["actions/cache"]["path"] == "**/.asyncguard_cache" and "hashFiles(" in uses["actions/cache"]["key"]
    assert uses["github/codeql-action/upload-sarif"]["sarif_file"] == "${{ inputs.sarif-file }}"
