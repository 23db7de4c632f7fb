"""The harness as a user meets it: measurements, failures recorded not lost, no orphan process, the gate."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    """A copy of the test apps in this test's directory, so the processes it starts can be found by name."""
    directory = tmp_path / "apps"
    directory.mkdir()
    for app in APP_DIR.glob("*.py"):
        (directory / app.name).write_text(app.read_text())
    return directory


def bench(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "asyncguard", "bench", *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout, cwd=ROOT)
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


def tallied(origin: float, *answers: tuple) -> list:
    """The load generator's tallies of some answers (`(when, name, latency ms, status, failure)`)."""
    from asyncguard.bench.tally import Tallies

    tallies = Tallies(origin)
    for when, name, latency, status, failure in answers:
        tallies.record(name, when, latency, status, failure)
    return tallies.to_json()


def test_histograms_keep_every_percentile_within_one_percent():
    from asyncguard.bench.results import histogram_percentiles
    from asyncguard.bench.tally import new_histogram, record

    values = [0.05 * 1.013 ** n for n in range(1200)]  # 50 µs to about 28 s
    histogram = new_histogram()
    for value in values:
        record(histogram, value)
    exact, approximate = percentiles(values), histogram_percentiles(histogram)
    for key in ("p50", "p90", "p95", "p99", "p999", "max"):
        assert abs(getattr(approximate, key) - getattr(exact, key)) <= 0.01 * getattr(exact, key)


def test_a_flow_is_named_in_its_steps_order_wherever_the_warm_up_ended():
    from asyncguard.bench.tally import Tallies

    rows = tallied(100.0, (99.1, "POST /login", 5.0, 200, None), (99.2, "POST /orders", 5.0, 200, None),
                   (99.9, "GET /orders/[id]", 5.0, 200, None),  # the warm-up ends between the steps
                   (100.1, "GET /orders/[id]", 5.0, 200, None), (100.3, "POST /orders", 5.0, 200, None))
    assert Tallies.from_json(rows, 100.0).names() == ["POST /orders", "GET /orders/[id]"]  # the login: warm-up only


def test_summarize_excludes_warmup_and_counts_failures():
    run = EndpointRun("f", "flawed", "GET /", "GET", "/", "closed", 2)
    load = {"measure_from": 100.0, "ended": 102.0, "users": [[99.0, 2]], "generator_cpu": 0.3, "tallies": tallied(
        100.0,
        (99.5, "GET /", 500.0, 200, None),  # warm-up: excluded
        (100.1, "GET /", 10.0, 200, None), (100.2, "GET /", 20.0, 200, None),
        (101.5, "GET /", 30.0, 500, "HTTP 500"),
    )}
    summarize(run, load, [(100.5, 1.0), (101.2, 250.0)], 0.01)
    assert (run.requests, run.failures, run.rps) == (3, 1, 1.0)
    assert run.failure_reasons == {"HTTP 500": 1} and run.status_codes == {"200": 2, "500": 1}
    assert abs(run.latency.max - 20.0) <= 0.2 and run.lag.max == 250.0
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
    ("errors>+10%", 0, 3, True), ("errors>+10%", 0, 0, False), ("p99>+20%", 0, 0.5, True),  # a change from zero
    ("p99>250ms", None, 251, True), ("p99>250ms", None, 249, False), ("p99>0.25s", None, 251, True),
    ("rps<100", None, 99, True), ("rps<100", None, 101, False), ("errors>5", None, 6, True),
])
def test_gate_conditions(text, old, new, crossed):
    assert parse_condition(text).crossed(old, new) is crossed


def test_an_error_share_limit_is_a_share_of_the_requests():
    run = EndpointRun("f", "target", "GET /", "GET", "/", "closed", 2, requests=200, failures=3)
    condition = parse_condition("errors>1%")
    assert condition.value(run) == 1.5 and condition.crossed(None, condition.value(run))


@pytest.mark.parametrize("args,message", [
    (["--suite", "sample_apps", "tiny:app"], "give one of"),
    (["--scenario", "missing.toml"], "cannot read scenario missing.toml"),
    (["tiny:app", "--users", "0"], "--users must be a whole number at least 1"),
    (["tiny:app", "--users", "100000000"], "--users must be a whole number at least 1 and at most 10,000"),
    (["tiny:app", "--duration", "inf"], "--duration must be a number above 0"),
    (["tiny:app", "--duration", "nan"], "--duration must be a number above 0"),
    (["tiny:app", "--duration", "-1"], "--duration must be a number above 0"),
    (["tiny:app", "--duration", "1e12"], "at most 86,400"),
    (["tiny:app", "--warmup", "nan"], "--warmup must be a number at least 0"),
    (["tiny:app", "--rate", "0"], "--rate must be a number above 0"),
    (["tiny:app", "--rate", "inf"], "--rate must be a number above 0"),
    (["tiny:app", "--workers", "-1"], "--workers must be from 0 to 64"),
    (["tiny:app", "--timeout", "0"], "--timeout must be above 0"),
    (["tiny:app", "--max-failures", "nan"], "--max-failures must be a percentage from 0 to 100"),
    (["tiny:app", "--fail-if", "p99>+20%"], "--fail-if with a change (+N% or -N%) needs --compare"),
    (["tiny:app", "--fail-if", "p99>20%"], "p99 takes a limit in ms or s"),
    (["tiny:app", "--fail-if", "rps<5ms"], "rps takes a plain number"),
    (["tiny:app", "--compare", "x.json", "--fail-if", "speed>2"], "cannot read --fail-if"),
])
def test_bench_usage_errors(args, message):
    process = bench(*args, timeout=30)  # a bad value is refused at once, never a run that does not end
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr
    assert len(process.stderr.splitlines()) == 1


@pytest.mark.parametrize("setting", ['users = "many"', "duration = inf", "rate = nan", "users = 2.5"])
def test_scenario_load_values_are_checked_like_flags(tmp_path, setting):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f'app = "tiny:app"\n{setting}\n[[endpoint]]\nmethod = "GET"\npath = "/"\n')
    process = bench("--scenario", str(scenario), timeout=30)
    assert process.returncode == 2 and "must be a" in process.stderr and "Traceback" not in process.stderr


def test_requests_failing_beyond_the_threshold_fail_the_run(tmp_path, app_dir):
    out = tmp_path / "failing"
    process = bench("tiny:app", "--endpoint", "GET /sometimes", *FAST, "--app-dir", str(app_dir), "--out", str(out))
    assert process.returncode == 1, process.stderr
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.status == "failed" and run.error is None and "more than the 1% allowed" in run.failure
    assert json.loads((out / "results.json").read_text())["runs"][0]["status"] == "failed"
    assert "FAILED: " in process.stdout and "FAILED: " in process.stderr  # the summary, and the progress lines

    tolerant = bench("tiny:app", "--endpoint", "GET /sometimes", *FAST, "--app-dir", str(app_dir), "--out",
                     str(tmp_path / "tolerant"), "--max-failures", "20", "--fail-if", "errors>1%",
                     "--fail-if", "p99>100000ms")
    assert tolerant.returncode == 3, tolerant.stderr  # no --compare needed for a limit
    assert "errors: " in tolerant.stdout and "FAIL (errors>1%)" in tolerant.stdout
    assert "FAIL (p99>100000ms)" not in tolerant.stdout and "(limit: p99>100000ms)" in tolerant.stdout


@pytest.mark.parametrize("fault,reason", [("", "HTTP 500"), ("hang", "Timeout")])
def test_a_run_where_nothing_succeeds_after_validation_fails(tmp_path, app_dir, fault, reason):
    out = tmp_path / "nothing"
    process = bench("tiny:app", "--endpoint", "GET /sometimes", "--health", "/fast", *FAST, "--timeout", "1",
                    "--app-dir", str(app_dir), "--out", str(out), env={"TINY_FAIL_EVERY": "1", "TINY_FAULT": fault})
    assert process.returncode == 1, process.stderr
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.failure.startswith("no request succeeded after validation") and reason in run.failure
    assert run.requests >= 4 and run.failures == run.requests


def test_a_saturated_load_generator_is_said(capsys):
    from asyncguard.bench.cli import summary_table
    from asyncguard.bench.harness import describe

    run = EndpointRun("f", "target", "GET /", "GET", "/", "closed", 2)
    load = {"measure_from": 100.0, "ended": 101.0, "users": [], "generator_cpu": 0.97, "generator_peak_cpu": 0.97,
            "tallies": tallied(100.0, (100.5, "GET /", 1.0, 200, None))}
    summarize(run, load, [], 0.01)
    assert run.generator_saturated and "load generator was saturated" in describe(run)
    assert "(load generator saturated)" in summary_table(BenchResults(None, {}, runs=[run]))
    summarize(run, {**load, "generator_cpu": 0.5, "generator_peak_cpu": 0.5}, [], 0.01)
    assert not run.generator_saturated


def test_results_never_hold_nan_or_infinity_and_read_back(tmp_path):
    from sample_results import make_results

    results = make_results()
    results.runs[0].latency.p99 = float("nan")
    results.runs[0].target_rps = float("inf")
    results.scenario["load"]["rate"] = float("-inf")
    results.save(tmp_path / "results.json")

    def refuse(constant):
        raise ValueError(f"{constant} in results.json")

    data = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert data["runs"][0]["latency"]["p99"] is None and data["runs"][0]["target_rps"] is None
    assert data["scenario"]["load"]["rate"] is None
    again = BenchResults.load(tmp_path / "results.json")
    assert again.runs[0].latency.p99 != again.runs[0].latency.p99  # NaN again, in memory only
    assert again.runs[0].target_rps is None and again.runs[1].latency.p99 == results.runs[1].latency.p99


def test_results_of_an_earlier_version_read_with_a_status(tmp_path):
    from sample_results import make_results

    data = make_results().to_json()
    data["schema_version"] = 2
    for run in data["runs"]:
        for key in ("status", "failure", "profile_error", "generator_saturated"):
            run.pop(key)
    data["runs"][0]["error"] = "GET /x: HTTP 500, expected 200"
    runs = BenchResults.from_json(data).runs
    assert runs[0].status == "failed" and runs[1].status == "ok"


def test_a_failed_save_keeps_the_file_saved_before(tmp_path, monkeypatch):
    import asyncguard.atomic
    from sample_results import make_results

    results = make_results()
    results.save(tmp_path / "results.json")
    before = (tmp_path / "results.json").read_text()
    results.runs.pop()
    monkeypatch.setattr(asyncguard.atomic.os, "fdopen", lambda handle, *a, **k: _FailingFile(handle))
    with pytest.raises(OSError, match="No space left"):
        results.save(tmp_path / "results.json")
    assert (tmp_path / "results.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "runs.csv", "series.csv"]


class _FailingFile:
    """A file on a full disk: the write fails (and the descriptor is closed, as a real file would be)."""

    def __init__(self, handle: int):
        os.close(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def write(self, text):
        raise OSError(28, "No space left on device")


def answers(load: dict, name: str = "GET /"):
    """Every answer to `name` in a load generator's tallies, warm-up and drain included."""
    from asyncguard.bench.tally import Tallies

    return Tallies.from_json(load["tallies"], load["measure_from"]).window(name, -10 ** 6)


def test_a_dead_server_counts_every_attempt():
    from asyncguard.bench.harness import run_load
    from asyncguard.bench.manifest import Endpoint

    load = run_load(f"http://127.0.0.1:{free_port()}", [("GET /", Endpoint("GET", "/"), 200, 1)], 2, None, 0.0,
                    1.5, 5.0, None)
    tally = answers(load)
    assert tally.failures == tally.requests >= 2 * 8  # each user goes on trying, after a short back-off
    assert all("Connection refused" in reason for reason in tally.reasons)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write an answer: no Nagle delay between headers and body
    served = 0
    drop_at = 0
    """Request number whose connection is dropped in the middle of its answer."""
    trickle = False
    """Answer every request with one byte of headers every 0.2 s, forever: it never ends, never times out."""

    def do_GET(self):
        type(self).served += 1
        if self.trickle:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while not self.server.closing.wait(0.2):
                self.wfile.write(b"X")
                self.wfile.flush()
            return
        dropped = type(self).served == self.drop_at
        self.send_response(200)
        self.send_header("Content-Length", "100" if dropped else "2")
        self.end_headers()
        self.wfile.write(b"ok")
        if dropped:  # the connection goes in the middle of the answer
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


@contextmanager
def raw_server(**behaviour):
    """A plain HTTP/1.1 keep-alive server on 127.0.0.1 that misbehaves as told."""
    handler = type("Handler", (_Handler,), dict(behaviour))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.closing = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()


def test_a_dropped_connection_costs_one_request_not_the_user():
    from asyncguard.bench.harness import run_load
    from asyncguard.bench.manifest import Endpoint

    with raw_server(drop_at=5) as (url, handler):
        load = run_load(url, [("GET /", Endpoint("GET", "/"), 200, 1)], 1, None, 0.0, 1.0, 5.0, None)
    tally = answers(load)
    assert tally.failures == 1
    assert tally.ok > 50  # the one user reconnected and went on (4 answers came before the dropped one)


def test_requests_in_flight_when_the_run_ends_are_timeouts():
    from asyncguard.bench.harness import run_load
    from asyncguard.bench.loadgen import IN_FLIGHT_AT_END
    from asyncguard.bench.manifest import Endpoint

    with raw_server(trickle=True) as (url, handler):
        load = run_load(url, [("GET /", Endpoint("GET", "/"), 200, 1)], 3, None, 0.0, 0.5, 1.0, None)
    tally = answers(load)
    assert tally.requests == 3 and tally.reasons == {IN_FLIGHT_AT_END: 3}


def test_server_stderr_is_kept_bounded_with_its_last_words(app_dir):
    from asyncguard.bench.server import STDERR_KEPT

    with Server("tiny:app", app_dir=app_dir, health_path="/fast", env={"TINY_STDERR_MB": "40"}) as server:
        deadline = time.monotonic() + 10
        while "tiny: last words" not in server.stderr_tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        kept = server.stderr_tail(limit=10 ** 9)
    assert "tiny: last words" in kept and len(kept.encode()) <= STDERR_KEPT


def test_readiness_tells_failing_from_not_listening_within_a_second(app_dir):
    started = time.monotonic()
    with pytest.raises(ServerError, match="is listening, but answers GET /unavailable with HTTP 503"):
        Server("tiny:app", app_dir=app_dir, health_path="/unavailable", startup_timeout=15).start()
    assert time.monotonic() - started < 8

    states: list[tuple[float, str]] = []
    started = time.monotonic()
    with pytest.raises(ServerError, match="was not ready within 3 s: not listening on 127.0.0.1"):
        Server("tiny:app", app_dir=app_dir, health_path="/fast", startup_timeout=3, env={"TINY_STARTUP_DELAY": "60"},
               waiting=lambda state: states.append((time.monotonic() - started, state))).start()
    assert states and states[0][0] < 2 and "not listening on 127.0.0.1" in states[0][1]
    assert orphans(str(app_dir)) == []


def test_a_start_up_failure_shows_the_apps_own_error_on_the_console(tmp_path, app_dir):
    out = tmp_path / "broken"
    process = bench("broken:app", "--endpoint", "GET /", *FAST, "--app-dir", str(app_dir), "--out", str(out))
    assert process.returncode == 1
    said = 'raise RuntimeError("tiny: no database configured")'
    assert said in process.stderr and "RuntimeError: tiny: no database configured" in process.stderr
    assert "broken:app exited with status" in process.stdout and "tiny: no database configured" in process.stdout
    assert BenchResults.load(out / "results.json").runs[0].status == "failed"


def test_readiness_and_validation_never_follow_a_redirect(app_dir):
    from asyncguard.bench.harness import validate
    from asyncguard.bench.manifest import Endpoint, Expectation

    with raw_server() as (trap, handler):
        env = {"TINY_REDIRECT_TO": trap.replace("127.0.0.1", "localhost") + "/elsewhere"}
        with Server("tiny:app", app_dir=app_dir, health_path="/redirect", env=env) as server:
            error = validate(server.url, Endpoint("GET", "/redirect"), Expectation(), 5)
        assert handler.served == 0
    assert "HTTP 302, expected 2xx (a redirect to http://localhost:" in error and "not followed" in error


def test_a_truncated_profile_is_the_profiles_error(tmp_path):
    from asyncguard.bench.profiling import ProfileError, summarize_profile

    (tmp_path / "session.pyisession").write_text('{"start_time": 1700000000.0, "duration": 3.0, "frame_tree": {"id')
    with pytest.raises(ProfileError, match="JSONDecodeError"):
        summarize_profile(tmp_path, tmp_path, ())


def test_the_report_shows_a_failed_run_and_a_saturated_generator():
    from asyncguard.report.html import render_run
    from sample_results import make_results

    results = make_results()
    flawed = results.runs[0]
    flawed.failure, flawed.generator_saturated = "no request succeeded after validation: 12 × HTTP 503", True
    page = render_run(results)
    assert "failed: no request succeeded after validation: 12 × HTTP 503" in page
    assert '<span class="bad">failed</span>' in page and "(load generator saturated)" in page
    assert '<span class="bad">failed</span>' not in render_run(make_results())


@pytest.mark.parametrize("content,message", [
    ("[]", "is not an asyncguard results file"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema_version": 3, "runs": "many"}', "is not an asyncguard results file"),
])
def test_a_compare_file_that_is_not_results_is_a_one_line_error(tmp_path, content, message):
    """`--compare` reads its file as a report does: what a page could not show, a gate cannot compare."""
    old = tmp_path / "old.json"
    old.write_text(content)
    process = bench("tiny:app", "--compare", str(old), "--fail-if", "p99>+20%", timeout=30)
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr
    assert len(process.stderr.splitlines()) == 1


def test_a_loop_that_stalls_200_ms_every_2_s_is_blocked_at_the_line_that_sleeps(tmp_path):
    """Time-weighted: the stalls are a tenth of the time though most lag samples are on time."""
    out = tmp_path / "stalling"
    process = bench("stalling:app", "--app-dir", str(ROOT / "tests" / "bench_apps"), "--endpoint", "GET /",
                    "--users", "2", "--warmup", "0.5", "--duration", "6", "--no-profile", "--out", str(out))
    assert process.returncode == 0, process.stderr
    run = BenchResults.load(out / "results.json").runs[0]
    assert run.loop_verdict == "blocked" and run.blocked and run.lag.p99 < 100  # the old verdict: not blocked
    assert 0.07 <= run.stalls.share <= 0.13 and 450 <= run.stalls.total_ms <= 750  # 3 × 200 ms, ±25%
    top = run.stalls.top[0]
    assert (top.path, top.line, top.function, top.route) == ("tests/bench_apps/stalling.py", 21, "stall_forever", None)
    assert top.stall_ms >= 0.9 * run.stalls.total_ms and top.stack[-1].function == "stall_forever"


def test_stalls_are_weighed_by_time_and_the_machines_share_is_not_the_apps():
    from asyncguard.bench.stalls import loop_verdict, summarize_stalls
    from asyncguard.bench.results import LagSummary

    app = [["/srv/app.py", 9, "handler", "app"], ["/usr/lib/asyncio/events.py", 80, "_run", "library"]]
    idle = [["/usr/lib/python3/selectors.py", 468, "select", "idle"]]
    deeper = [["/usr/lib/python3/socket.py", 700, "recv", "library"], *app]  # the same site, another stack
    held = [{"stall": 100.5, "ms": 200.0, "stacks": [[50, 49, "GET /x", app], [50, 50, "GET /x", deeper]],
             "cpu_ms": 1.0, "runqueue_ms": 0.0}]
    starved = [{"stall": 100.5, "ms": 200.0, "stacks": [[60, 0, None, idle], [40, 30, "GET /x", app]],
                "cpu_ms": 20.0, "runqueue_ms": 150.0}]
    lag = LagSummary(samples=900, expected_samples=1000, p50=0.1, p99=2.0, max=200.0)
    blocked = summarize_stalls(held, 100.0, 102.0)
    assert (blocked.count, blocked.share, blocked.longest_ms, blocked.wait_per_request_ms) == (1, 0.1, 200.0, 10.0)
    assert blocked.attributed_ms == 200.0 and [(site.path, site.count) for site in blocked.top] == [("/srv/app.py", 1)]
    assert loop_verdict(lag, blocked, 2.0) == "blocked"
    machine = summarize_stalls(starved, 100.0, 102.0)
    assert machine.runqueue_ms == 150.0 and machine.attributed_ms == 20.0  # 50 ms scheduled, 40% of it in code
    assert loop_verdict(lag, machine, 2.0) == "contended"


def test_the_lag_file_keeps_what_a_crash_left_whole(tmp_path):
    """One read gives the samples and the records; a stall line cut short by a killed server, or a line the wrapper
    did not write (a number as a string, an empty sample count), is skipped, and what came before it is kept."""
    from asyncguard.bench.stalls import read_lag_file, summarize_stalls

    stall = {"stall": 100.5, "ms": 200.0, "stacks": [[3, 2, "GET /x", [["/srv/app.py", 9, "handler", "app"]]]]}
    lines = ["100.0100 0.400", json.dumps(stall), '{"cpu":100.75,"cpu_ms":12.5,"runqueue_ms":0.3}',
             '{"stall":101.2,"ms":20', '{"stall": "soon", "ms": 1, "stacks": []}', '{"stall": 1, "ms": "30", '
             '"stacks": []}', '{"stall": 101.5, "ms": 25, "stacks": [[0, 0, null, []]]}', "garbage",
             '{"stall": 101.7, "ms": 21, "stacks": [], "runqueue_ms": null}', "101.0100 0.2"]
    path = tmp_path / "lag.txt"
    path.write_text("\n".join(lines) + "\n")
    samples, records = read_lag_file(path)
    assert samples == [(100.01, 0.4), (101.01, 0.2)]
    assert json.loads(json.dumps(records)) == [stall, {"cpu": 100.75, "cpu_ms": 12.5, "runqueue_ms": 0.3},
                                               {"stall": 101.7, "ms": 21.0, "stacks": []}]
    assert summarize_stalls(records, 100.0, 102.0).count == 2  # what was kept is summed without an error
    assert read_lag_file(tmp_path / "missing.txt") == ([], [])


def test_the_garbage_collectors_pass_is_a_site_of_its_own_and_holds_nothing():
    """The collector holds the GIL, so the watchdog's only samples are the allocation that set it off: its time is the
    runtime's, not that call's (a large heap under a busy machine stalled the sample suite's fixed endpoints so)."""
    from asyncguard.bench.results import GC_PATH, LagSummary
    from asyncguard.bench.stalls import loop_verdict, summarize_stalls

    allocation = [["/srv/app.py", 12, "build", "app"]]
    collected = [{"stall": 100.5, "ms": 200.0, "stacks": [[4, 3, "GET /x", allocation]], "runqueue_ms": 10.0,
                  "gc_ms": 150.0}]
    stalls = summarize_stalls(collected, 100.0, 110.0)
    assert (stalls.gc_ms, stalls.runqueue_ms, stalls.attributed_ms, stalls.held_ms) == (150.0, 10.0, 40.0, 30.0)
    assert [(site.path, site.stall_ms) for site in stalls.top] == [(GC_PATH, 150.0), ("/srv/app.py", 40.0)]
    lag = LagSummary(samples=900, expected_samples=1000, p50=0.1, p99=30.0, max=200.0)
    assert loop_verdict(lag, stalls, 10.0) == "busy"  # 2% of the time stalled, 0.3% held by a call
