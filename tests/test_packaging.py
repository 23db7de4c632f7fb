"""The plain install as a CI gate gets it: a fresh wheel in a clean venv checks, serves an editor, and says what the
`bench` extra is for. It needs the package index for the checker's own dependencies; without one it is skipped."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest

from conftest import ROOT
from test_server import Client


@pytest.fixture(scope="module")
def clean_install(tmp_path_factory):
    where = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(where), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {built.stderr.strip().splitlines()[-1:]}")
    wheel, = where.glob("asyncguard-*.whl")
    environment = where / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True,
                               text=True, timeout=600)
    if installed.returncode != 0:
        pytest.skip(f"no package index for the dependencies: {installed.stderr.strip().splitlines()[-1:]}")
    return environment / "bin"


def test_the_plain_install_checks_and_has_no_bench_packages(clean_install, tmp_path):
    (tmp_path / "app.py").write_text("import time\n\n\nasync def handler():\n    time.sleep(1)\n")
    checked = subprocess.run([str(clean_install / "asyncguard"), "check", "app.py"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1 and "app.py:5:5: AG101" in checked.stdout, checked.stderr
    freeze = subprocess.run([str(clean_install / "python"), "-m", "pip", "list"], capture_output=True, text=True)
    assert not {"uvicorn", "locust", "matplotlib", "fastapi"} & {line.split()[0].lower()
                                                                  for line in freeze.stdout.splitlines()[2:]}


@pytest.mark.parametrize("command", [["bench", "app:app"], ["report", "results.json"]])
def test_the_plain_install_names_the_extra_a_command_needs(clean_install, tmp_path, command):
    process = subprocess.run([str(clean_install / "asyncguard"), *command], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 2 and "Traceback" not in process.stderr
    assert process.stderr.endswith("pip install 'asyncguard[bench]'\n") and process.stderr.count("\n") == 1


def test_the_plain_install_serves_an_editor(clean_install, tmp_path):
    (tmp_path / "app.py").write_text("import time\n\n\nasync def handler():\n    time.sleep(1)\n")
    client = Client(tmp_path, python=str(clean_install / "python"), source=None)
    try:
        answer = client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
        assert answer["result"]["serverInfo"]["name"] == "asyncguard"
        client.send("initialized", {})
        published = client.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        assert [d["code"] for d in published["params"]["diagnostics"]] == ["AG101"]
    finally:
        client.close()
