"""Results built in code for the report's tests: deterministic, small, and with every part a page shows."""

from __future__ import annotations

from asyncguard.bench.results import (
    GC_PATH,
    BenchResults,
    BystanderSummary,
    EndpointRun,
    FlawInfo,
    FrameStat,
    LagSummary,
    Percentiles,
    ProfileSummary,
    Provenance,
    Second,
    StallFrame,
    StallSite,
    StallSummary,
    StaticFinding,
)


def run(flaw: str, side: str, path: str, rps: float, p99: float, lag_p99: float, others_p99: float,
        error: str | None = None, function: str = "sleep") -> EndpointRun:
    seconds = [Second(second=n, rps=rps + n, errors=0, p50=p99 / 3, p95=p99 * 0.9, p99=p99 + n, users=8,
                      lag_p99=lag_p99 + n, lag_max=lag_p99 * 2) for n in range(4)]
    return EndpointRun(
        flaw=flaw, side=side, name=f"GET {path}", method="GET", path=path, load_model="closed", users=8,
        warmup=1.0, duration=4.0, requests=int(rps * 4), failures=1 if side == "flawed" else 0,
        failure_reasons={"HTTP 500": 1} if side == "flawed" else {}, status_codes={"200": int(rps * 4)},
        rps=rps, latency=Percentiles(p50=p99 / 3, p90=p99 / 2, p95=p99 * 0.9, p99=p99, p999=p99 * 1.1,
                                     max=p99 * 1.2),
        series=seconds, lag=LagSummary(samples=400 if lag_p99 < 100 else 20, expected_samples=400,
                                       p50=lag_p99 / 4, p99=lag_p99, max=lag_p99 * 2),
        generator_cpu=0.2, error=error,
        profile=None if error else ProfileSummary(
            html=f"profiles/{flaw}-{side}/profile.html", speedscope=f"profiles/{flaw}-{side}/profile.speedscope.json",
            duration=3.0, top_frames=[FrameStat(function, "<built-in>", None, 1.5, 0.5),
                                      FrameStat("run", "asyncio/runners.py", 86, 0.9, 0.3)],
            blocking_share=0.5 if side == "flawed" else 0.0, blocking_frames=[function]),
        bystander=BystanderSummary("GET", "/health", requests=80, failures=0,
                                   latency=Percentiles(p50=others_p99 / 4, p90=others_p99 / 2,
                                                       p95=others_p99 * 0.8, p99=others_p99,
                                                       p999=others_p99, max=others_p99)),
    )


def stalled(measured: EndpointRun, text: str) -> EndpointRun:
    """A run whose stalls were sampled: most of their time at the finding's line, some at a line no finding names,
    a little in the garbage collector."""
    frames = [StallFrame("app/main.py", 4, "route"), StallFrame("app/db.py", 30, f"report{text}")]
    measured.stalls = StallSummary(count=30, total_ms=3000.0, attributed_ms=2800.0, held_ms=2700.0, gc_ms=100.0, share=0.75,
                                   per_second=7.5, longest_ms=300.0, wait_per_request_ms=112.5, top=[
        StallSite("app/db.py", 30, f"report{text}", f"GET /flawed/db{text}", 28, 2400.0, frames),
        StallSite("app/slow.py", 7, "digest", None, 5, 400.0, [StallFrame("app/slow.py", 7, "digest")]),
        StallSite(GC_PATH, 0, "garbage collection", None, 2, 100.0, [StallFrame(GC_PATH, 0, "garbage collection")])])
    measured.loop_verdict = "blocked"
    return measured


def make_results(text: str = "", started: str = "2026-12-01T07:00:00+00:00", rps_scale: float = 1.0,
                 cores: int = 2) -> BenchResults:
    """Two flaws (one with two fixes, one whose fix failed) and their findings; `text` goes into every string a
    user or an app controls, to check it is escaped."""
    sleep_path, db_path = f"/flawed/sleep{text}", f"/flawed/db{text}"
    runs = [
        run(f"sleep{text}", "flawed", sleep_path, 40 * rps_scale, 700.0, 250.0, 690.0),
        run(f"sleep{text}", "fixed", "/fixed/sleep", 1300 * rps_scale, 48.0, 3.0, 12.0),
        run(f"sleep{text}", "fixed", "/fixed/sleep-threadpool", 900 * rps_scale, 80.0, 30.0, 40.0),
        stalled(run("sync-db", "flawed", db_path, 39 * rps_scale, 790.0, 300.0, 780.0, function=f"execute{text}"),
                text),
        run("sync-db", "fixed", "/fixed/db", 0, 0, 0, 0, error=f"GET /fixed/db: HTTP 500{text}\nTraceback ..."),
    ]
    flaws = [FlawInfo(f"sleep{text}", f"`time.sleep` in an async handler{text}", f"It blocks{text}.",
                      f"`await asyncio.sleep(...)`{text}", "", [["AG101", f"path operation GET {sleep_path}"]]),
             FlawInfo("sync-db", f"Synchronous database driver{text}", "Queries on the loop.", "aiosqlite.",
                      f"a note{text}", [["AG106", f"path operation GET {db_path}"]])]
    findings = [
        StaticFinding("AG101", "blocking-sleep-in-async-function", f"`time.sleep()` sleeps on the loop{text}",
                      "`await asyncio.sleep(...)`", f"app/routes{text}.py", 12, 5,
                      f"path operation GET {sleep_path}", 10,
                      ["@router.get('/sleep')", "async def sleep():", f"    time.sleep(0.02)  # {text}",
                       "    return {}"]),
        StaticFinding("AG106", "blocking-database-call-in-async-function", "blocking database call",
                      "`aiosqlite`", "app/db.py", 30, 9, f"path operation GET {db_path}", 29,
                      ["async def report():", "    conn.execute(SQL)"],
                      chain=[{"name": f"report{text}", "path": "app/db.py", "line": 30}]),
        StaticFinding("AG104", "blocking-file-io-in-async-function", "blocking file call `open()`", "`aiofiles`",
                      "app/other.py", 3, 1, "middleware", 3, ["open('x')"]),
    ]
    provenance = Provenance(
        machine={"cpu": f"Test CPU{text}", "cores": cores, "ram_gb": 24.0, "os": "Linux"}, python="3.11.7",
        packages={"fastapi": "0.165.0", "uvicorn": "0.54.0"}, git={"commit": "0123456789abcdef", "dirty": False},
        started=started, command=["asyncguard", "bench", f"--out{text}"])
    scenario = {"load": {"users": 8, "rate": None, "warmup": 1.0, "duration": 4.0, "profile": True,
                         "profile_users": 4, "profile_duration": 3.0, "bystander_interval": 0.05},
                "load_model": "closed", "targets": []}
    return BenchResults(provenance, scenario, runs, flaws=flaws, findings=findings, complete=True)
