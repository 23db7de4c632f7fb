"""The harness as a user meets it: measurements, failures recorded not lost, no orphan process, the gate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from asyncguard.bench.compare import parse_condition
from asyncguard.bench.results import BenchResults, EndpointRun, percentiles, summarize
from asyncguard.bench.server import Server, ServerError, free_port
from conftest import ROOT

APP_DIR = ROOT / "tests" / "bench_apps"
FAST = ["--users", "4", "--warmup", "0.2", "--duration", "1", "--no-profile"]


@pytest.fixture
def app_dir(tmp_path):
    """A copy of the tiny app in this test's directory, so the processes it starts can be found by name."""
    directory = tmp_path / "apps"
    directory.mkdir()
    (directory / "tiny.py").write_text((APP_DIR / "tiny.py").read_text())
    return directory


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "asyncguard", "bench", *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=120, cwd=ROOT)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"asyncguard bench did not stop by itself:\n{error.stderr}") from None


def orphans(marker: str) -> list[str]:
    """Processes still running whose command line names this test's directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if marker in cmdline and process.pid != os.getpid():
            found.append(cmdline)
    return found


def test_percentiles_from_full_resolution_samples():
    result = percentiles([float(n) for n in range(1, 1001)])
    assert (result.p50, result.p99, result.p999, result.max) == (500.0, 990.0, 999.0, 1000.0)


def test_summarize_excludes_warmup_and_counts_failures():
    run = EndpointRun("f", "flawed", "GET /", "GET", "/", "closed", 2)
    load = {"measure_from": 100.0, "ended": 102.0, "users": [[99.0, 2]], "generator_cpu": 0.3, "samples": [
        [99.5, "GET /", 500.0, 200, None],  # warm-up: excluded
        [100.1, "GET /", 10.0, 200, None], [100.2, "GET /", 20.0, 200, None],
        [101.5, "GET /", 30.0, 500, "HTTP 500"],
    ]}
    summarize(run, load, [(100.5, 1.0), (101.2, 250.0)], 0.01)
    assert (run.requests, run.failures, run.rps) == (3, 1, 1.0)
    assert run.failure_reasons == {"HTTP 500": 1} and run.status_codes == {"200": 2, "500": 1}
    assert run.latency.max == 20.0 and run.lag.max == 250.0
    assert [s.rps for s in run.series] == [2.0, 0.0] and run.series[1].errors == 1


def test_bench_measures_an_app_and_writes_results(tmp_path, app_dir):
    out = tmp_path / "run"
    process = bench("tiny:app", "--endpoint", "GET /fast", "--endpoint", "GET /block", *FAST, "--app-dir",
                    str(app_dir), "--out", str(out), "--bystander", "GET /fast")
    assert process.returncode == 0, process.stderr
    results = BenchResults.load(out / "results.json")
    assert results.complete and [r.name for r in results.runs] == ["GET /fast", "GET /block"]
    fast, block = results.runs
    assert fast.requests > 50 and fast.failures == 0
    assert block.rps < fast.rps and block.lag.samples > 0
    assert fast.bystander.requests >= 10 and fast.bystander.failures == 0
    assert block.bystander.latency.p50 > fast.bystander.latency.p50  # the other client waits for the blocked loop
    assert f"report: {out / 'index.html'}" in process.stdout and (out / "index.html").exists()
    assert results.provenance.git["commit"] and results.provenance.machine["cores"]
    assert (out / "runs.csv").read_text().count("\n") == 3 and (out / "series.csv").exists()
    assert "GET /block" in process.stdout


def test_suite_measures_a_flaw_beside_its_fix_with_the_finding_that_explains_it(tmp_path):
    out = tmp_path / "suite"
    process = bench("--suite", "sample_apps", "--only", "sleep", "--first-fix-only", *FAST, "--out", str(out))
    assert process.returncode == 0, process.stderr
    results = BenchResults.load(out / "results.json")
    flawed, fixed = results.runs
    assert flawed.lag.blocked and not fixed.lag.blocked
    assert flawed.bystander.latency.p99 > 5 * fixed.bystander.latency.p99
    assert [f.id for f in results.flaws] == ["sleep"] and results.flaws[0].findings == [
        ["AG101", "path operation GET /flawed/sleep"]]
    finding = next(f for f in results.findings if f.code == "AG101")
    assert "time.sleep(0.02)" in finding.excerpt[finding.line - finding.excerpt_start]
    page = (out / "index.html").read_text()
    assert "blocking-sleep-in-async-function" in page and "Blocks the event loop" in page


def test_distributed_master_and_one_worker(tmp_path, app_dir):
    out, scratch = tmp_path / "distributed", tmp_path / "tmp"
    scratch.mkdir()
    process = bench("tiny:app", "--endpoint", "GET /fast", *FAST, "--workers", "1", "--app-dir", str(app_dir),
                    "--out", str(out), env={"TMPDIR": str(scratch)})
    assert process.returncode == 0, process.stderr
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.requests > 50 and run.failures == 0 and run.latency.p99 > 0
    assert orphans(str(app_dir)) == []
    assert list(scratch.iterdir()) == []  # the workers' hand-over files went with the run


def test_scenario_mixes_weighted_endpoints_in_one_load(tmp_path, app_dir):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f"""
app = "tiny:app"
app_dir = "{app_dir}"
users = 4
warmup = 0.2
duration = 1.5

[[endpoint]]
method = "GET"
path = "/fast"
weight = 3

[[endpoint]]
method = "GET"
path = "/block"
weight = 1
""")
    out = tmp_path / "mixed"
    process = bench("--scenario", str(scenario), "--no-profile", "--out", str(out))
    assert process.returncode == 0, process.stderr
    fast, block = BenchResults.load(out / "results.json").runs
    assert (fast.name, block.name) == ("GET /fast", "GET /block")
    assert 1.5 < fast.requests / block.requests < 6  # three to one, within noise
    assert fast.users == block.users == 4 and fast.lag == block.lag  # one load, one loop


def test_port_in_use_is_a_clear_error():
    port = free_port()
    with Server("tiny:app", app_dir=APP_DIR, port=port):
        with pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
            Server("tiny:app", app_dir=APP_DIR, port=port).start()


def test_server_crash_mid_run_is_recorded_with_stderr_and_leaves_no_orphan(tmp_path, app_dir):
    marker = str(app_dir)
    out = tmp_path / "crash"
    process = bench("tiny:app", "--endpoint", "GET /fast", *FAST, "--app-dir", marker, "--out", str(out),
                    env={"TINY_CRASH_AFTER": "0.6"})
    assert process.returncode == 1
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.error and "server exited during the run" in run.error
    assert orphans(marker) == []


def test_sigint_keeps_what_was_measured_and_leaves_no_orphan(tmp_path, app_dir):
    marker = str(app_dir)
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncguard", "bench", "tiny:app", "--endpoint", "GET /fast", "--endpoint",
         "GET /block", "--endpoint", "GET /fast", *FAST, "--duration", "2", "--app-dir", marker, "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "results.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    results = BenchResults.load(out / "results.json")
    assert not results.complete and 1 <= len(results.runs) < 3
    time.sleep(0.5)
    assert orphans(marker) == []


def test_compare_gate_passes_and_fails(tmp_path, app_dir):
    fast = [*FAST, "--app-dir", str(app_dir)]
    old = tmp_path / "old"
    assert bench("tiny:app", "--endpoint", "GET /fast", *fast, "--out", str(old)).returncode == 0
    passing = bench("tiny:app", "--endpoint", "GET /fast", *fast, "--out", str(tmp_path / "a"),
                    "--compare", str(old / "results.json"), "--fail-if", "p99>+100000%")
    assert passing.returncode == 0, passing.stderr
    assert "app/target/GET /fast p99:" in passing.stdout

    data = json.loads((old / "results.json").read_text())
    data["runs"][0]["rps"] *= 100  # the earlier run was a hundred times faster: a regression now
    data["provenance"]["machine"]["cores"] = 64
    (old / "results.json").write_text(json.dumps(data))
    failing = bench("tiny:app", "--endpoint", "GET /fast", *fast, "--out", str(tmp_path / "b"),
                    "--compare", str(old / "results.json"), "--fail-if", "rps<-10%")
    assert failing.returncode == 3
    assert "FAIL (rps<-10%)" in failing.stdout and "warning: runs differ in machine cores" in failing.stderr


@pytest.mark.parametrize("text,old,new,crossed", [
    ("p99>+20%", 100, 121, True), ("p99>+20%", 100, 119, False), ("rps<-10%", 100, 89, True),
    ("rps<-10%", 100, 95, False),
])
def test_gate_conditions(text, old, new, crossed):
    assert parse_condition(text).crossed(old, new) is crossed


@pytest.mark.parametrize("args,message", [
    (["--suite", "sample_apps", "tiny:app"], "give one of"),
    (["--scenario", "missing.toml"], "cannot read scenario missing.toml"),
    (["tiny:app", "--users", "0"], "must be positive"),
    (["tiny:app", "--fail-if", "p99>+20%"], "--fail-if needs --compare"),
    (["tiny:app", "--compare", "x.json", "--fail-if", "speed>2"], "cannot read --fail-if"),
])
def test_bench_usage_errors(args, message):
    process = bench(*args)
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr
