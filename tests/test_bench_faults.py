"""`bench` under faults: signals in every phase, a read-only or full file system, an `--out` that is not a run.

Each signal test starts `bench` in a session of its own (so that its group can be signalled), follows every process
it starts, sends SIGINT, SIGTERM or SIGHUP to the process or to its group in one phase (a server starting, the
load, the profile, a save), and asserts what a user must be able to count on: the documented exit status (128 +
the signal), no traceback, the endpoints finished before kept in results.json, no temporary file and no process left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from asyncguard.bench.results import BenchResults
from conftest import ROOT

APP_DIR = ROOT / "tests" / "bench_apps"
FAST = ["--users", "4", "--warmup", "0.1", "--duration", "0.5"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
SLOW_SAVE = """
import os, sys, time
from pathlib import Path

marker, real_replace = Path(os.environ["SLOW_SAVE_MARKER"]), os.replace

def slow_replace(source, target, *args, **kwargs):
    if Path(target).name == "results.json" and not marker.exists():  # the first save: the test signals meanwhile
        marker.write_text("saving")
        time.sleep(1.0)
    real_replace(source, target, *args, **kwargs)

os.replace = slow_replace
from asyncguard.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""`asyncguard` whose first save of results.json takes a second between writing the file and renaming it."""


@pytest.fixture
def app_dir(tmp_path):
    directory = tmp_path / "apps"
    directory.mkdir()
    for app in APP_DIR.glob("*.py"):
        shutil.copy(app, directory / app.name)
    return directory


def bench_command(*args: str, wrapper: str | None = None) -> list[str]:
    return [sys.executable, *(["-c", wrapper] if wrapper else ["-m", "asyncguard"]), "bench", *args]


class Bench:
    """A command (`asyncguard bench`, or one that runs it) in a session of its own, with every process it starts
    followed until it ends."""

    everyone: list["Bench"] = []
    """Every one started, for `no_process_outlives_its_test` to clean up after a failed test."""

    def __init__(self, command: list[str], env: dict | None = None):
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.started: dict[int, psutil.Process] = {}
        self.everyone.append(self)

    def children(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.started.update((child.pid, child) for child in found)
        return found

    def wait_for(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.children()):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"bench ended before {what}:\n{self.process.stderr.read()}")
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s")

    def running(self, part: str) -> bool:
        return any(part in " ".join(self.cmdline(child)) for child in self.children())

    @staticmethod
    def cmdline(process: psutil.Process) -> list[str]:
        try:
            return process.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return []

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        while self.process.poll() is None and timeout > 0:
            self.children()
            time.sleep(0.05)
            timeout -= 0.05
        stdout, stderr = self.process.communicate(timeout=5)
        return self.process.returncode, stdout, stderr

    def left_behind(self) -> list[str]:
        """Processes it started that are still there (the kernel's SIGKILL may take a moment to land)."""
        deadline = time.monotonic() + 3
        while True:
            alive = [p for p in self.started.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not alive or time.monotonic() > deadline:
                return [" ".join(self.cmdline(p)) or str(p.pid) for p in alive]
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch) -> Path:
    """The temporary directory of every bench a test starts: what it holds afterwards was left behind."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    """A test that fails (or finds a process left behind) still ends what it started: by process id, only those."""
    yield
    while Bench.everyone:
        bench = Bench.everyone.pop()
        for process in [bench.process, *bench.started.values()]:
            try:
                process.kill()
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        bench.process.wait()


def saved_runs(out: Path) -> int:
    try:
        return len(json.loads((out / "results.json").read_text())["runs"])
    except (OSError, ValueError):
        return 0


def two_endpoints(app_dir: Path, out: Path) -> list[str]:
    return ["tiny:app", "--endpoint", "GET /fast", "--endpoint", "GET /block", *FAST, "--no-profile",
            "--app-dir", str(app_dir), "--out", str(out)]


def in_session(*args: str, env: dict | None = None, wrapper: str | None = None) -> Bench:
    return Bench(bench_command(*args, wrapper=wrapper), env=env)


def start_in_phase(phase: str, app_dir: Path, out: Path) -> Bench:
    """A bench brought to `phase`; in every phase but the profile's, the first endpoint is measured already."""
    if phase == "start-up":  # the second endpoint's server, still starting (its lifespan takes a second)
        bench = in_session(*two_endpoints(app_dir, out), env={"TINY_STARTUP_DELAY": "1"})
        bench.wait_for(lambda _: saved_runs(out) == 1 and bench.running("uvicorn"), "second server starting")
    elif phase == "load":
        bench = in_session(*two_endpoints(app_dir, out))
        bench.wait_for(lambda _: saved_runs(out) == 1 and bench.running("asyncguard.bench.loadgen"), "second load")
        time.sleep(0.2)
    elif phase == "profile":  # the endpoint's load is measured; its profiling pass runs
        bench = in_session("tiny:app", "--endpoint", "GET /block", *FAST, "--app-dir", str(app_dir), "--out", str(out))
        bench.wait_for(lambda _: bench.running("asyncguard.bench.profiling")
                       and bench.running("asyncguard.bench.loadgen"), "profiling pass")
        time.sleep(0.3)
    else:  # "save": the first endpoint's results being written
        marker = out.parent / "saving"
        bench = in_session(*two_endpoints(app_dir, out), env={"SLOW_SAVE_MARKER": str(marker)}, wrapper=SLOW_SAVE)
        bench.wait_for(lambda _: marker.exists(), "first save")
        time.sleep(0.2)
    return bench


@pytest.mark.parametrize("to_group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
@pytest.mark.parametrize("phase", ["start-up", "load", "profile", "save"])
def test_a_signal_in_any_phase_keeps_what_was_measured_and_leaves_nothing(tmp_path, app_dir, scratch, phase,
                                                                          signum, to_group):
    out = tmp_path / "run"
    bench = start_in_phase(phase, app_dir, out)
    (os.killpg if to_group else os.kill)(bench.process.pid, signum)
    status, _, stderr = bench.finish()

    assert status == 128 + signum, stderr
    assert "Traceback" not in stderr and f"interrupted ({signum.name}); 1 run(s) saved" in stderr
    results = BenchResults.load(out / "results.json")
    assert not results.complete and len(results.runs) == 1
    kept = results.runs[0]
    assert kept.error is None and kept.requests > 0 and kept.latency.p50 > 0
    if phase == "profile":
        assert kept.profile is None and not [p for p in (out / "profiles").rglob("*") if p.is_file()]
    assert not list(out.glob(".*.tmp")) and not (out / ".asyncguard-probe").exists()
    assert bench.started and bench.left_behind() == []
    assert list(scratch.iterdir()) == []


def test_the_processes_of_a_killed_bench_die_with_it(tmp_path, app_dir):
    """SIGKILL leaves bench no time to stop anything: the kernel ends the server, the load generator and its
    worker (PR_SET_PDEATHSIG), each in a session of its own."""
    out = tmp_path / "killed"
    bench = in_session("tiny:app", "--endpoint", "GET /fast", *FAST, "--duration", "3", "--workers", "1",
                       "--no-profile", "--app-dir", str(app_dir), "--out", str(out))
    bench.wait_for(lambda children: bench.running("uvicorn") and bench.running("--worker"), "load with a worker")
    os.kill(bench.process.pid, signal.SIGKILL)
    status, _, _ = bench.finish()
    assert status == -signal.SIGKILL and len(bench.started) >= 3
    assert bench.left_behind() == []


def test_timeout_ends_bench_with_everything_stopped(tmp_path, app_dir):
    """`timeout` sends SIGTERM to bench (and its own group): the servers, in sessions of their own, stop too."""
    out = tmp_path / "timed"
    bench = Bench(["timeout", "-s", "TERM", "5", *bench_command(
        "tiny:app", "--endpoint", "GET /fast", "--endpoint", "GET /block", "--endpoint", "GET /fast", *FAST,
        "--duration", "1", "--app-dir", str(app_dir), "--out", str(out))])
    status, _, stderr = bench.finish()
    assert status == 124 and "Traceback" not in stderr and "interrupted (SIGTERM)" in stderr
    assert 1 <= len(BenchResults.load(out / "results.json").runs) < 3
    assert bench.left_behind() == []


def test_an_out_that_holds_other_files_is_refused_unless_forced(tmp_path, app_dir):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    args = ["tiny:app", "--endpoint", "GET /fast", *FAST, "--no-profile", "--app-dir", str(app_dir), "--out",
            str(out)]
    refused = subprocess.run([sys.executable, "-m", "asyncguard", "bench", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode == 2 and refused.stderr.startswith("asyncguard: error: --out ")
    assert "holds other files and no asyncguard run" in refused.stderr and sorted(os.listdir(out)) == ["holiday.jpg"]
    forced = subprocess.run([sys.executable, "-m", "asyncguard", "bench", *args, "--force"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert (out / "holiday.jpg").exists() and BenchResults.load(out / "results.json").runs
    again = subprocess.run([sys.executable, "-m", "asyncguard", "bench", *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # an earlier run's directory is an asyncguard run


@contextmanager
def mounted_tmpfs(where: Path, size: str, read_only: bool = False):
    """A small tmpfs (root only): a file system that fills up, or refuses writes, for real."""
    where.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(directory: Path) -> None:
    """Write until the file system is full."""
    with (directory / "filler").open("wb", buffering=0) as out:
        try:
            while True:
                out.write(bytes(4096))
        except OSError:
            pass


def bench_into(out: Path, app_dir: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asyncguard", "bench", "tiny:app", "--endpoint", "GET /fast", *FAST,
                           "--app-dir", str(app_dir), "--out", str(out), *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("read_only,reason", [(True, "Read-only file system"), (False, "No space left on device")])
def test_an_out_that_cannot_be_written_is_found_before_measuring(tmp_path, app_dir, read_only, reason):
    with mounted_tmpfs(tmp_path / "disk", "64k", read_only=read_only) as disk:
        if not read_only:
            fill(disk)
        started = time.monotonic()
        process = bench_into(disk / "run", app_dir, "--no-profile", timeout=30)
        assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
        assert process.stderr.startswith(f"asyncguard: error: cannot write the results in --out {disk / 'run'}")
        assert reason in process.stderr and time.monotonic() - started < 10  # nothing was measured
        assert not (disk / "run").exists()


def test_a_failed_save_keeps_the_results_saved_before_readable(tmp_path, app_dir):
    with mounted_tmpfs(tmp_path / "disk", "512k") as disk:
        out = disk / "run"
        bench = in_session(*two_endpoints(app_dir, out))
        bench.wait_for(lambda _: saved_runs(out) == 1 and (out / "series.csv").exists(), "first save")
        fill(disk)  # the disk is full before the second endpoint is saved
        status, _, stderr = bench.finish()
        assert status == 1 and stderr.splitlines()[-1].startswith(f"asyncguard: error: cannot save the results in "
                                                                  f"{out}: No space left on device")
        assert "Traceback" not in stderr
        results = BenchResults.load(out / "results.json")
        assert len(results.runs) == 1 and results.runs[0].requests > 0
        assert not list(out.glob(".*.tmp")) and bench.left_behind() == []


def test_a_profile_cut_short_by_a_full_disk_is_the_profiles_error_not_the_runs(tmp_path, app_dir):
    with mounted_tmpfs(tmp_path / "disk", "256k") as disk:
        out = disk / "run"
        process = bench_into(out, app_dir)
        assert process.returncode == 0, process.stderr
        assert "profile failed: cannot read the profile" in process.stderr and "Traceback" not in process.stderr
        run = BenchResults.load(out / "results.json").runs[0]
        assert run.requests > 0 and run.profile is None and "JSONDecodeError" in run.profile_error
        assert not [p for p in (out / "profiles").rglob("*") if p.is_file()] and (out / "index.html").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_measuring_a_users_server_stops_bench_and_leaves_the_server_running(tmp_path, app_dir,
                                                                                           signum):
    """`--url`: the server is the user's; bench stops its load, keeps the endpoint it finished, and never signals
    the server it did not start."""
    from asyncguard.bench.server import Server

    out = tmp_path / "url"
    with Server("tiny:app", app_dir=app_dir) as server:
        bench = in_session("--url", server.url, "--endpoint", "GET /fast", "--endpoint", "GET /block", *FAST,
                           "--duration", "2", "--out", str(out))
        bench.wait_for(lambda _: saved_runs(out) == 1 and bench.running("asyncguard.bench.loadgen"), "second load")
        time.sleep(0.2)
        os.kill(bench.process.pid, signum)
        status, _, stderr = bench.finish()
        assert status == 128 + signum and "Traceback" not in stderr, stderr
        assert f"interrupted ({signum.name}); 1 run(s) saved" in stderr
        assert bench.left_behind() == [] and server.process.poll() is None  # the user's server: still serving
    assert len(BenchResults.load(out / "results.json").runs) == 1


def test_a_signal_during_a_locustfiles_load_keeps_no_half_measured_run_and_leaves_nothing(tmp_path, app_dir):
    out = tmp_path / "flow"
    bench = in_session("orders:app", "--app-dir", str(app_dir), "-f", str(app_dir / "shopper.py"), "--users", "2",
                       "--warmup", "0.1", "--duration", "3", "--no-profile", "--out", str(out),
                       env={"ORDERS_TOKEN": "s3cret", "BENCH_TOKEN": "s3cret"})
    bench.wait_for(lambda _: bench.running("asyncguard.bench.loadgen"), "the locustfile's load")
    time.sleep(1.0)
    os.kill(bench.process.pid, signal.SIGTERM)
    status, _, stderr = bench.finish()
    assert status == 128 + signal.SIGTERM and "Traceback" not in stderr and "interrupted (SIGTERM)" in stderr
    assert bench.left_behind() == []
    assert not (out / "results.json").exists() or BenchResults.load(out / "results.json").runs == []
