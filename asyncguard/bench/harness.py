"""Runs benchmarks: for each endpoint, a fresh server (wrapped to measure loop lag), a validated request, a
bounded Locust load, then optionally a separate profiling pass. Results are saved after every load and again
after its profile, so an interrupted or crashed suite, or a failed profile, keeps what it measured.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from asyncguard.bench.lag import INTERVAL as LAG_INTERVAL
from asyncguard.bench.stalls import loop_verdict, read_lag_file, summarize_stalls
from asyncguard.lifetime import deferred_signals, die_with_parent
from asyncguard.bench.manifest import Endpoint, Expectation, Manifest, answered_as_expected
from asyncguard.bench.profiling import ProfileError, summarize_profile
from asyncguard.bench.results import (
    FAILURES_ALLOWED,
    GENERATOR_SATURATED_CPU,
    BenchResults,
    BYSTANDER,
    BystanderSummary,
    EndpointRun,
    Provenance,
    failure_reason,
    summarize,
)
from asyncguard.bench.server import Server, ServerError, free_port, http_request, traceback_end
from asyncguard.bench.tally import Tallies
from asyncguard.machine import machine

PACKAGES = ("asyncguard", "fastapi", "starlette", "uvicorn", "locust", "httpx", "pyinstrument", "uvloop", "httptools")


@dataclass(frozen=True)
class LoadSettings:
    users: int = 32
    rate: float | None = None
    """Target requests per second for the constant-arrival-rate model; None for the closed loop."""
    warmup: float = 2.0
    duration: float = 6.0
    profile: bool = True
    profile_users: int = 4
    profile_duration: float = 3.0
    timeout: float = 30.0
    """Seconds a request may wait for its answer before it fails as a timeout."""
    max_failures: float = FAILURES_ALLOWED
    """Share of a run's requests that may fail before the run is failed."""
    workers: int = 0
    """Locust worker processes under a master (0: one local process)."""
    bystander_interval: float = 0.05
    """Seconds between two requests of the bystander (20 a second): a steady trickle, not a load of its own."""
    lag_file: Path | None = None
    """For a server the user runs (`Target.url`): where its `asyncguard.bench.lag.measured` wrapper writes."""

    @property
    def load_model(self) -> str:
        return "rate" if self.rate else "closed"


@dataclass(frozen=True)
class Target:
    """One endpoint of one app, and how to serve it."""

    flaw: str
    side: str
    app: str
    endpoint: Endpoint
    expect: Expectation
    app_dir: Path | None = None
    env: dict = field(default_factory=dict)
    health_path: str = "/"
    profile_frames: tuple[str, ...] = ()
    weight: int = 1
    """Share of this endpoint in a mixed load (a scenario's endpoints run together)."""
    bystander: Endpoint | None = None
    """A cheap request of the same app, timed alongside the load (see results.BystanderSummary)."""
    url: str | None = None
    """A server the user runs (`--url`), measured as it is: none is started, nothing is profiled."""
    locustfile: Path | None = None
    """The user's own Locust users (`-f`): they make the requests, one run per request name they use."""

    @property
    def name(self) -> str:
        return f"{self.endpoint.method} {self.endpoint.path}"


def suite_targets(manifest: Manifest, first_fix_only: bool = False) -> list[Target]:
    """Every flaw of the sample apps: the flawed endpoint, then its fix(es)."""
    app_dir = manifest.path.parent if manifest.path else None
    targets = []
    for flaw in manifest.flaws:
        fixes = flaw.fixed[:1] if first_fix_only else flaw.fixed
        targets += [Target(flaw.id, side, manifest.app, endpoint, flaw.expect, app_dir, health_path="/health",
                           profile_frames=flaw.profile_frames, bystander=manifest.bystander)
                    for side, endpoint in [("flawed", flaw.flawed), *(("fixed", fix) for fix in fixes)]]
    return targets


def cores() -> tuple[list[int] | None, list[int] | None]:
    """Server on one core, load generator on the others, where the machine has two or more."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(available) < 2:
        return None, None
    return available[:1], available[1:]


class SaveError(Exception):
    """The results could not be written; the file keeps what was saved before."""


def validate(url: str, endpoint: Endpoint, expect: Expectation, timeout: float) -> str | None:
    """One request before timing: None when the answer is right, else why not. A redirect is an answer, never
    followed (it may point at another host)."""
    try:
        status, body, location = http_request(url + endpoint.path, endpoint.method, timeout,
                                              dict(endpoint.headers), endpoint.body)
    except OSError as error:
        return f"{endpoint.method} {endpoint.path}: no answer ({error})"
    if not answered_as_expected(status, expect.status):
        redirect = f" (a redirect to {location}, not followed)" if location else ""
        return (f"{endpoint.method} {endpoint.path}: HTTP {status}, expected {expect.described}{redirect}: "
                f"{body[:300]!r}")
    if expect.contains and expect.contains.encode() not in body:
        return f"{endpoint.method} {endpoint.path}: body lacks {expect.contains!r}"
    if expect.keys:
        try:
            missing = [key for key in expect.keys if key not in json.loads(body)]
        except ValueError:
            return f"{endpoint.method} {endpoint.path}: body is not JSON"
        if missing:
            return f"{endpoint.method} {endpoint.path}: body lacks {', '.join(missing)}"
    return None


def run_load(url: str, targets: Sequence[tuple[str, Endpoint, int, int]], users: int, rate: float | None,
             warmup: float, duration: float, timeout: float, cpus: list[int] | None,
             live: Callable[[dict], None] = lambda progress: None, workers: int = 0,
             bystander: Endpoint | None = None, bystander_interval: float = 0.05,
             locustfile: Path | None = None) -> dict:
    """The load generator subprocess, bounded in time; returns its raw samples."""
    job = {
        "locustfile": str(locustfile.resolve()) if locustfile is not None else None,
        "host": url, "users": users, "rate": rate, "warmup": warmup, "duration": duration, "timeout": timeout,
        "workers": workers, "master_port": free_port() if workers else None,
        "endpoints": [{"name": name, "method": e.method, "path": e.path, "status": status, "weight": weight,
                       "headers": dict(e.headers), "body": e.body} for name, e, status, weight in targets],
        "bystander": bystander and {"method": bystander.method, "path": bystander.path,
                                    "interval": bystander_interval},
    }
    # the workers' hand-over files live where this process, which outlives a killed generator, removes them
    with tempfile.TemporaryFile(mode="w+") as output, \
            tempfile.TemporaryDirectory(prefix="asyncguard-workers-") as scratch:
        job["scratch"] = scratch
        process, reader = None, None
        errors: deque[str] = deque(maxlen=200)  # its last lines only: a failing Locust can be chatty
        try:
            with deferred_signals():  # a signal now waits until the process is known, to be killed
                process = subprocess.Popen([sys.executable, "-m", "asyncguard.bench.loadgen"],
                                           stdin=subprocess.PIPE, stdout=output, stderr=subprocess.PIPE, text=True,
                                           start_new_session=True, preexec_fn=die_with_parent())
            if cpus and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(process.pid, set(cpus))
            reader = threading.Thread(target=_read_progress, args=(process.stderr, live, errors), daemon=True)
            reader.start()
            process.stdin.write(json.dumps(job))
            process.stdin.close()
            process.wait(timeout=warmup + duration + 2 * timeout + 30)  # its last answers and its bystander's
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if reader is not None:
                reader.join(timeout=5)
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed ({process.returncode}): {''.join(errors)[-2000:]}")
        output.seek(0)
        return json.load(output)


def _read_progress(stream, live: Callable[[dict], None], errors: deque[str]) -> None:
    """The generator's per-second JSON lines go to `live`; anything else is kept for an error message."""
    for line in stream:
        try:
            live(json.loads(line))
        except ValueError:
            errors.append(line)


class Harness:
    def __init__(self, settings: LoadSettings, out: Path, results: BenchResults,
                 report: Callable[[str], None] = lambda message: None,
                 live: Callable[[str], None] = lambda status: None):
        self.settings = settings
        self.out = out
        self.results = results
        self.report = report
        """Lines that stay: what was measured."""
        self.live = live
        """A status line that is replaced: the current phase, live req/s and p99."""
        self.server_cpus, self.load_cpus = cores()
        self.phase = ""

    def run_all(self, groups: Sequence[Sequence[Target]]) -> BenchResults:
        """Each group is one app under one load: a single endpoint, or a scenario's weighted mix."""
        for index, group in enumerate(groups, start=1):
            first = group[0]
            names = " + ".join(target.name for target in group)
            self.phase = f"[{index}/{len(groups)}] {first.flaw} {first.side} {names}"
            self.live(f"{self.phase}: starting the server")
            runs = self.measure(group)
            self.results.runs.extend(runs)
            self.save()  # before the profile: an interrupted or failed profiling pass loses nothing measured
            self.report(f"{self.phase}\n" + "\n".join(describe(run) for run in runs))
            if self.settings.profile and first.url is None and not any(run.error for run in runs):
                self.profile(group, runs)
                self.save()
        self.results.complete = True
        self.save()
        return self.results

    def save(self) -> None:
        """Whole files or none (a signal waits for them); on failure the file keeps what was saved before."""
        try:
            with deferred_signals():
                self.results.save(self.out / "results.json")
        except OSError as error:
            raise SaveError(f"cannot save the results in {self.out}: {error.strerror or error}; results.json keeps "
                            "the runs saved before") from None

    def measure(self, group: Sequence[Target]) -> list[EndpointRun]:
        settings = self.settings
        first = group[0]
        runs = [EndpointRun(flaw=t.flaw, side=t.side, name=t.name, method=t.endpoint.method, path=t.endpoint.path,
                            load_model=settings.load_model, users=settings.users, target_rps=settings.rate,
                            warmup=settings.warmup, duration=settings.duration,
                            bystander=first.bystander and BystanderSummary(first.bystander.method,
                                                                           first.bystander.path))
                for t in group]
        if first.url is not None:
            return self.measure_running(group, runs)
        error = None
        with tempfile.TemporaryDirectory(prefix="asyncguard-lag-") as scratch:
            lag_file = Path(scratch) / "lag.txt"
            server = Server("asyncguard.bench.lag:app", app_dir=first.app_dir, health_path=first.health_path,
                            cpus=self.server_cpus,
                            env={**first.env, "ASYNCGUARD_APP": first.app, "ASYNCGUARD_LAG_FILE": str(lag_file)},
                            waiting=lambda state: self.live(f"{self.phase}: starting the server: {state}"),
                            label=first.app)
            try:
                with server:
                    error = self.validate_and_load(server.url, group, runs, lag_file)
                    if error is None and not server.alive():
                        error = f"server exited during the run:\n{server.stderr_tail()}"
            except (ServerError, RuntimeError, subprocess.TimeoutExpired) as failure:
                error = str(failure)
        for run in runs:
            run.error = error
        return runs

    def measure_running(self, group: Sequence[Target], runs: list[EndpointRun]) -> list[EndpointRun]:
        """A server the user started: measured at its URL, the loop lag read from its lag file if it writes one."""
        try:
            error = self.validate_and_load(group[0].url, group, runs, self.settings.lag_file)
        except (RuntimeError, subprocess.TimeoutExpired) as failure:
            error = str(failure)
        for run in runs:
            run.error = error
        return runs

    def validate_and_load(self, url: str, group: Sequence[Target], runs: list[EndpointRun],
                          lag_file: Path | None) -> str | None:
        """Each endpoint's answer checked, then the load; the runs' statistics filled. Why it could not run, or
        None."""
        settings = self.settings
        locustfile = group[0].locustfile
        if locustfile is None:  # a locustfile's flows make their own first requests (a login, then the rest)
            self.live(f"{self.phase}: validating the responses")
            error = next(filter(None, (validate(url, t.endpoint, t.expect, settings.timeout) for t in group)), None)
            if error is not None:
                return error
        load = run_load(url, load_targets(group), settings.users, settings.rate, settings.warmup, settings.duration,
                        settings.timeout, self.load_cpus, self._show_load, settings.workers, group[0].bystander,
                        settings.bystander_interval, locustfile)
        if locustfile is not None:
            runs[:] = runs_by_name(runs[0], load) or runs
        lag, records = read_lag_file(lag_file) if lag_file is not None else (None, [])
        if lag is not None and group[0].url is not None and not any(
                load["measure_from"] <= stamp <= load["ended"] for stamp, _ in lag):
            self.report(f"  loop lag not measured: {lag_file} had no samples during the load (is the app wrapped "
                        "with asyncguard.bench.lag.measured, and its server started with ASYNCGUARD_LAG_FILE?)")
            lag = None
        start, end = load["measure_from"], load["ended"]
        stalls = summarize_stalls(records, start, end, Path.cwd()) if records and lag is not None else None
        for run in runs:  # one server, one loop: the runs of a group share its stalls
            summarize(run, load, lag, LAG_INTERVAL)
            run.stalls = stalls
            run.loop_verdict = loop_verdict(run.lag, stalls, end - start)
            run.failure = failure_reason(run, settings.max_failures)
        return None

    def _show_load(self, progress: dict) -> None:
        phase = "warm-up" if progress.get("warmup") else "load"
        p99 = "-" if progress.get("p99") is None else f"{progress['p99']:.0f} ms"
        self.live(f"{self.phase}: {phase} {progress['elapsed']:.0f} s, {progress['rps']} req/s, p99 {p99}")

    def profile(self, group: Sequence[Target], runs: Sequence[EndpointRun]) -> None:
        """A second, profiled server under light load; its files are kept beside the results, its summary (or why
        there is none) goes into `runs`. A partial profile is removed, never shown."""
        self.live(f"{self.phase}: profiling")
        first = group[0]
        directory = self.out / "profiles" / f"{first.flaw}-{first.side}-{len(self.results.runs) - len(runs)}"
        server = ProfiledServer(first.app, directory, app_dir=first.app_dir, health_path=first.health_path,
                                cpus=self.server_cpus, env=first.env)
        try:
            with server:
                run_load(server.url, load_targets(group), self.settings.profile_users, None, 0.5,
                         self.settings.profile_duration, self.settings.timeout, self.load_cpus,
                         locustfile=first.locustfile)
            summary = summarize_profile(directory, self.out, first.profile_frames, app_dir=first.app_dir or Path.cwd())
            (directory / "session.pyisession").unlink()  # ~10 MB, and pyinstrument's HTML holds the same samples
        except (ServerError, ProfileError, RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            shutil.rmtree(directory, ignore_errors=True)
            for run in runs:
                run.profile_error = str(error)
            self.report(f"  profile failed: {str(error).splitlines()[0]}")
            return
        except BaseException:  # interrupted: the load measurement is saved already
            shutil.rmtree(directory, ignore_errors=True)
            raise
        for run in runs:
            run.profile = summary


def runs_by_name(template: EndpointRun, load: dict) -> list[EndpointRun]:
    """One run for each request name a locustfile's users used after the warm-up (`GET /orders/[id]`; a login in
    `on_start` is part of the warm-up), in the order they first did."""
    names = [name for name in Tallies.from_json(load["tallies"], load["measure_from"]).names() if name != BYSTANDER]
    return [replace(template, name=name, method=name.partition(" ")[0], path=name.partition(" ")[2]) for name in names]


def load_targets(group: Sequence[Target]) -> list[tuple[str, Endpoint, int, int]]:
    return [(t.name, t.endpoint, t.expect.status, t.weight) for t in group]


class ProfiledServer(Server):
    def __init__(self, app: str, out: Path, **kwargs):
        super().__init__(app, **kwargs)
        self.out = out

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "asyncguard.bench.profiling", "--app", self.app, "--port", str(self.port),
                   "--out", str(self.out)]
        return command + (["--app-dir", str(self.app_dir)] if self.app_dir else [])


def describe(run: EndpointRun) -> str:
    """A run in a line or a few: its figures, and what makes them doubtful or the run failed (with the app's own
    error when it did not start)."""
    if run.error:
        first, *rest = run.error.splitlines()
        return "\n".join([f"  error: {first}", *(f"    {line}" for line in traceback_end("\n".join(rest)))])
    bystander = f"  bystander p99 {run.bystander.latency.p99:.1f} ms" if run.bystander else ""
    lines = [f"  {run.rps:,.0f} req/s  p50 {run.latency.p50:.1f} ms  p99 {run.latency.p99:.1f} ms  "
             f"{lag_text(run)}{bystander}  ({run.requests} requests, {run.failures} failed)"]
    if run.latency_uncorrected is not None:
        lines.append(f"  from each request's intended send (--rate); from its actual send: p50 "
                     f"{run.latency_uncorrected.p50:.1f} ms  p99 {run.latency_uncorrected.p99:.1f} ms"
                     + (f"; {run.dropped:,} never sent (no user was free)" if run.dropped else ""))
    if run.failure:
        lines.append(f"  FAILED: {run.failure}")
    if run.generator_saturated:
        lines.append(f"  warning: the load generator was saturated (above {GENERATOR_SATURATED_CPU:.0%} of a core): "
                     "these figures are its limit, not the app's")
    return "\n".join(lines)


def lag_text(run: EndpointRun) -> str:
    return f"loop lag p99 {run.lag.p99:.1f} ms" if run.lag.measured else "loop lag not measured"


def provenance(command: Sequence[str]) -> Provenance:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return Provenance(machine=machine(), python=platform.python_version(), packages=packages, git=git_state(),
                      started=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=list(command))


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def scenario_dict(settings: LoadSettings, targets: Sequence[Target]) -> dict:
    load = {key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()}
    return {"load": load, "load_model": settings.load_model,
            "targets": [{"flaw": t.flaw, "side": t.side, "app": t.app, "method": t.endpoint.method,
                         "path": t.endpoint.path,
                         "bystander": t.bystander and f"{t.bystander.method} {t.bystander.path}"} for t in targets]}


def with_upstream_env(targets: Sequence[Target], url: str) -> list[Target]:
    return [replace(t, env={**t.env, "SHOP_UPSTREAM_URL": url}) for t in targets]

