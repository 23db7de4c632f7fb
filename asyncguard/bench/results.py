"""Benchmark results: a typed, versioned dataclass tree, saved as JSON (and CSV mirrors) before any rendering.

Statistics are computed here from the load generator's tallies (HDR histograms per name and second, under 1%
relative error); rendering (asyncguard.report) reads only this.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from asyncguard.atomic import write_atomically

SCHEMA_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
"""Version 2 added a run's `bystander` and the results' `flaws` and `findings`; version 3 a run's `status`,
`failure`, `profile_error` and `generator_saturated`, and null for a number that was not finite; version 4 a run's
`histogram`; version 5 its `stalls` and `loop_verdict`; version 6 the stalls' `gc_ms`. Older files read without them (a run with an error reads as
failed; without `loop_verdict`, the verdict is the lag's)."""
BYSTANDER = "bystander"
"""The load generator's name for the bystander's samples: another client's requests during the run."""
LAG_BLOCKED_P99_MS = 100.0
GC_PATH = "<garbage collector>"
"""The path of the stall site that stands for the garbage collector's passes."""
"""A loop whose lag p99 passes this, or that got fewer than half its expected samples, was blocked (FIELD-NOTES)."""
FAILURES_ALLOWED = 0.01
"""Share of a run's requests that may fail (a status not expected, an error, a timeout) before the run fails."""
GENERATOR_SATURATED_CPU = 0.85
"""A load-generator process busier than this share of a core is the limit of what is measured, not the app."""


@dataclass
class Percentiles:
    """Response times in milliseconds, of every answer (HDR histograms: under 1% relative error)."""

    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return round(ordered[rank - 1], 3)


def percentiles(values: Sequence[float]) -> Percentiles:
    ordered = sorted(values)
    return Percentiles(*(percentile(ordered, f) for f in (0.50, 0.90, 0.95, 0.99, 0.999)),
                       max=round(ordered[-1], 3) if ordered else 0.0)


@dataclass
class Second:
    """One second of the measured window."""

    second: int
    rps: float
    errors: int
    p50: float
    p95: float
    p99: float
    users: int
    lag_p99: float | None = None
    lag_max: float | None = None


@dataclass
class LagSummary:
    """Event-loop lag in milliseconds: how late a 10 ms sleep woke up."""

    samples: int = 0
    expected_samples: int = 0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    measured: bool = True
    """False for a server the user runs without the lag wrapper (`asyncguard.bench.lag.measured`)."""

    @property
    def blocked(self) -> bool:
        return self.measured and (self.p99 > LAG_BLOCKED_P99_MS or self.samples < self.expected_samples / 2)


@dataclass
class StallFrame:
    path: str
    """As `asyncguard check` prints it: relative to the directory bench ran in when under it."""
    line: int
    function: str


@dataclass
class StallSite:
    """Where the loop was held: the deepest frame of the app's own code in the stalls' samples (else the innermost
    frame of the library that held it)."""

    path: str
    line: int
    function: str
    route: str | None
    """The request the loop served meanwhile (`GET /orders/7`), None for a background task or a callback."""
    count: int
    """Stalls it was seen in."""
    stall_ms: float
    """Stall time attributed to it: the stalls' duration, by the share of their samples that show it."""
    stack: list[StallFrame] = field(default_factory=list)
    """A representative stack, outermost first."""


@dataclass
class StallSummary:
    """Time the loop stood still longer than `threshold_ms` (its lag monitor's wake-up that late), time-weighted:
    a 200 ms stall weighs 200 ms, not one sample."""

    threshold_ms: float = 20.0
    count: int = 0
    total_ms: float = 0.0
    attributed_ms: float = 0.0
    """Stall time whose samples show code running (the app's or a library's), the loop thread on a CPU."""
    held_ms: float = 0.0
    """Of the attributed time, what one call held (seen in consecutive samples): not a loop saturated by many."""
    runqueue_ms: float = 0.0
    """Stall time the loop thread was ready to run but not scheduled: the machine, not the app (the watchdog's own
    sampling, which it may have waited for too, is not counted)."""
    gc_ms: float = 0.0
    """Stall time the garbage collector ran (the runtime, not a call; a site of its own in `top`)."""
    share: float = 0.0
    """Of the measured wall time, stalled."""
    per_second: float = 0.0
    longest_ms: float = 0.0
    wait_per_request_ms: float = 0.0
    """What a request arriving at a random moment waits for a stalled loop, on average (sum of d²/2 per window)."""
    loop_cpu: float | None = None
    """Share of the wall time the loop's thread ran on a CPU (None where /proc does not tell)."""
    top: list[StallSite] = field(default_factory=list)


@dataclass
class FrameStat:
    function: str
    file: str
    line: int | None
    self_seconds: float
    share: float
    """Of all samples of the profile."""


@dataclass
class ProfileSummary:
    html: str
    """Path of pyinstrument's HTML, relative to the results file."""
    speedscope: str
    duration: float
    top_frames: list[FrameStat] = field(default_factory=list)
    blocking_share: float = 0.0
    """Share of the profile inside the flaw's blocking frames (`profile_frames` of the manifest)."""
    blocking_frames: list[str] = field(default_factory=list)


@dataclass
class BystanderSummary:
    """Another client of the same server during the run: a cheap request (the health check) at a steady pace.

    A blocked loop delays every request it serves, not only the flawed ones; this is the proof for flaws whose
    own endpoint cannot get faster when fixed (CPU-bound work on a one-core server).
    """

    method: str
    path: str
    requests: int = 0
    failures: int = 0
    latency: Percentiles = field(default_factory=Percentiles)


@dataclass
class EndpointRun:
    """One endpoint under one load: the unit the report compares (flawed vs fixed)."""

    flaw: str
    side: str
    """"flawed", "fixed", or "target" for an app outside the sample suite."""
    name: str
    method: str
    path: str
    load_model: str
    """"closed" (N users, no think time) or "rate" (constant arrival rate)."""
    users: int
    target_rps: float | None = None
    warmup: float = 0.0
    duration: float = 0.0
    requests: int = 0
    failures: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    status_codes: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    saturated: bool = False
    """Constant-rate runs only: the achieved rate fell short of the target (by more than 5%)."""
    latency: Percentiles = field(default_factory=Percentiles)
    """Under a constant rate, from each request's intended send time (no coordinated omission)."""
    latency_uncorrected: Percentiles | None = None
    """Under a constant rate, from each request's actual send: what a closed-loop tool reports."""
    dropped: int = 0
    """Under a constant rate: send times no user was free to take before the load ended (of the run's group)."""
    histogram: str | None = None
    """The measured latency as an HDR histogram of microseconds (HdrHistogram's compressed base64): percentiles
    other than those above, or merged with other runs'."""
    series: list[Second] = field(default_factory=list)
    lag: LagSummary = field(default_factory=LagSummary)
    generator_cpu: float = 0.0
    """CPU of the load generator, in cores (all its processes together)."""
    generator_saturated: bool = False
    """A generator process used more than `GENERATOR_SATURATED_CPU` of its core: the figures are its limit."""
    error: str | None = None
    """Why the run could not be measured (failed validation, server crash), with the server's stderr."""
    failure: str | None = None
    """Why a measured run failed: too many failed requests (see `failure_reason`), or none succeeded."""
    profile: ProfileSummary | None = None
    profile_error: str | None = None
    """Why the profile is missing; the load measurement stands."""
    bystander: BystanderSummary | None = None
    stalls: StallSummary | None = None
    """None when the server wrote none (a lag wrapper older than stall sampling, or no lag measured)."""
    loop_verdict: str | None = None
    """"blocked" (code held the loop), "busy" (saturated by many short steps), "contended" (stalled, but the
    machine did not run the loop's thread, or it waited in the selector), "healthy"; None when lag was not
    measured (`asyncguard.bench.stalls.loop_verdict`)."""

    @property
    def blocked(self) -> bool:
        """The verdict that matters to a reader: code held the loop (files without a verdict: the lag's)."""
        if self.loop_verdict is None:
            return self.lag.blocked
        return self.loop_verdict == "blocked"

    @property
    def status(self) -> str:
        """"failed" when the run could not be measured or its requests failed, else "ok" (in results.json)."""
        return "failed" if self.error or self.failure else "ok"


@dataclass
class StaticFinding:
    """An `asyncguard check` finding in the measured app, with the lines around it, for the report to show."""

    code: str
    rule: str
    message: str
    suggestion: str
    path: str
    line: int
    column: int
    context: str
    excerpt_start: int
    """Line number of the first line of `excerpt`."""
    excerpt: list[str] = field(default_factory=list)
    chain: list[dict] = field(default_factory=list)
    """For findings reached through helpers: the call chain, outermost first."""


@dataclass
class FlawInfo:
    """What the sample apps' manifest says of a flaw: the report's words for it."""

    id: str
    title: str
    why: str
    fix: str
    note: str = ""
    findings: list[list[str]] = field(default_factory=list)
    """The (code, context) pairs `asyncguard check` reports for the flawed side."""


@dataclass
class Provenance:
    machine: dict[str, Any]
    python: str
    packages: dict[str, str]
    git: dict[str, Any]
    started: str
    command: list[str]


@dataclass
class BenchResults:
    provenance: Provenance
    scenario: dict[str, Any]
    runs: list[EndpointRun] = field(default_factory=list)
    flaws: list[FlawInfo] = field(default_factory=list)
    """The suite's flaws (empty for an app outside the sample suite)."""
    findings: list[StaticFinding] = field(default_factory=list)
    """What `asyncguard check` reports in the measured app's directory."""
    schema_version: int = SCHEMA_VERSION
    complete: bool = False
    """False while running and when interrupted: what is here was measured, the rest was not."""

    def to_json(self) -> dict:
        """Plain JSON data: each run with its `status`, and null for any number that is not finite."""
        data = asdict(self)
        for run, saved in zip(self.runs, data["runs"]):
            saved["status"] = run.status
        return finite(data)

    @classmethod
    def from_json(cls, data: dict) -> "BenchResults":
        if data.get("schema_version") not in READABLE_VERSIONS:
            raise ValueError(f"results schema {data.get('schema_version')} is not one of {READABLE_VERSIONS}")
        return cls(provenance=Provenance(**data["provenance"]), scenario=data["scenario"],
                   runs=[_run_from_json(r) for r in data["runs"]],
                   flaws=[FlawInfo(**f) for f in data.get("flaws", ())],
                   findings=[StaticFinding(**f) for f in data.get("findings", ())],
                   schema_version=data["schema_version"],
                   complete=data.get("complete", False))

    def save(self, path: Path) -> None:
        """Atomically: JSON, then `runs.csv` and `series.csv` beside it. A failed write leaves the files saved
        before as they were (and no temporary file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        write_atomically(path.with_name("runs.csv"), runs_csv(self.runs))
        write_atomically(path.with_name("series.csv"), series_csv(self.runs))

    @classmethod
    def load(cls, path: Path) -> "BenchResults":
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def finite(value: Any) -> Any:
    """NaN and the infinities as None (null): JSON has no such numbers, and a reader would choke on them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def build(cls, data: dict):
    """A dataclass from its JSON; a null where a number must be (it was not finite when saved) reads as NaN."""
    numbers = {f.name for f in fields(cls) if f.type == "float"}
    return cls(**{key: math.nan if value is None and key in numbers else value for key, value in data.items()})


def _run_from_json(data: dict) -> EndpointRun:
    data = dict(data)
    data.pop("status", None)  # derived from `error` and `failure`
    data["latency"] = build(Percentiles, data["latency"])
    if data.get("latency_uncorrected"):
        data["latency_uncorrected"] = build(Percentiles, data["latency_uncorrected"])
    data["series"] = [build(Second, s) for s in data["series"]]
    data["lag"] = build(LagSummary, data["lag"])
    if data.get("profile"):
        profile = dict(data["profile"])
        profile["top_frames"] = [build(FrameStat, f) for f in profile["top_frames"]]
        data["profile"] = build(ProfileSummary, profile)
    if data.get("stalls"):
        stalls = dict(data["stalls"])
        stalls["top"] = [build(StallSite, {**site, "stack": [StallFrame(**f) for f in site["stack"]]})
                         for site in stalls["top"]]
        data["stalls"] = build(StallSummary, stalls)
    if data.get("bystander"):
        data["bystander"] = build(BystanderSummary, {**data["bystander"],
                                                     "latency": build(Percentiles, data["bystander"]["latency"])})
    return build(EndpointRun, data)


RUN_COLUMNS = ["flaw", "side", "name", "method", "path", "load_model", "users", "target_rps", "requests",
               "failures", "rps", "saturated", "p50", "p90", "p95", "p99", "p999", "max", "lag_p99", "lag_max",
               "bystander_p50", "bystander_p99", "generator_cpu", "generator_saturated", "status", "failure", "error"]


def runs_csv(runs: Sequence[EndpointRun]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(RUN_COLUMNS)
    for run in runs:
        row = {**asdict(run), **asdict(run.latency), "status": run.status,
               "lag_p99": run.lag.p99, "lag_max": run.lag.max,
               "bystander_p50": run.bystander.latency.p50 if run.bystander else None,
               "bystander_p99": run.bystander.latency.p99 if run.bystander else None}
        writer.writerow([row[c] for c in RUN_COLUMNS])
    return out.getvalue()


def series_csv(runs: Sequence[EndpointRun]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = [f.name for f in fields(Second)]
    writer.writerow(["flaw", "side", "name", *columns])
    for run in runs:
        for second in run.series:
            writer.writerow([run.flaw, run.side, run.name, *(getattr(second, c) for c in columns)])
    return out.getvalue()


def summarize(run: EndpointRun, load: dict, lag_samples: Sequence[tuple[float, float]] | None,
              lag_interval: float) -> None:
    """Fill a run's statistics from the load generator's tallies (`asyncguard.bench.tally`, warm-up excluded) and
    the lag file; without a lag file (`None`) the loop's lag is not measured. Under a rate only the requests that
    fell due in the measured seconds count (as many as the rate asks, each stall once); else every answer after the
    warm-up does, the last ones drained included."""
    from asyncguard.bench.tally import Tallies

    tallies = Tallies.from_json(load["tallies"], load["measure_from"])
    start, end = load["measure_from"], load["ended"]
    last = math.ceil(run.duration) - 1 if run.target_rps else None
    measured = tallies.window(run.name, 0, last)
    if run.bystander is not None:
        other = tallies.window(BYSTANDER)
        run.bystander.requests, run.bystander.failures = other.requests, other.failures
        run.bystander.latency = histogram_percentiles(other.latency)
    run.requests, run.failures = measured.requests, measured.failures
    run.failure_reasons, run.status_codes = dict(measured.reasons), dict(measured.codes)
    window = max(end - start, 1e-9)
    run.rps = round(measured.ok / window, 2)
    run.latency = histogram_percentiles(measured.latency)
    run.histogram = measured.latency.encode().decode("ascii")
    if run.target_rps:
        run.saturated = run.rps < 0.95 * run.target_rps
        run.latency_uncorrected = histogram_percentiles(measured.uncorrected)
        run.dropped = load.get("dropped", 0)
    run.generator_cpu = load.get("generator_cpu", 0.0)
    run.generator_saturated = load.get("generator_peak_cpu", run.generator_cpu) > GENERATOR_SATURATED_CPU
    lag = [ms for stamp, ms in lag_samples or () if start <= stamp <= end]
    ordered = sorted(lag)
    run.lag = LagSummary(samples=len(lag), expected_samples=int(window / lag_interval),
                         p50=percentile(ordered, 0.5), p99=percentile(ordered, 0.99),
                         max=round(ordered[-1], 3) if ordered else 0.0, measured=lag_samples is not None)
    run.series = per_second(tallies, run.name, load.get("users", []), lag_samples or [], start, end)


def histogram_percentiles(histogram) -> Percentiles:
    """p50…p99.9 and the maximum of an HDR histogram of microseconds, in milliseconds."""
    from asyncguard.bench.tally import milliseconds

    return Percentiles(*(milliseconds(histogram, q) for q in (50, 90, 95, 99, 99.9)),
                       max=round(histogram.get_max_value() / 1000, 3) if histogram.get_total_count() else 0.0)


def failure_reason(run: EndpointRun, allowed: float = FAILURES_ALLOWED) -> str | None:
    """Why a measured run failed, or None: more than `allowed` of its requests (or of the bystander's) failed,
    or none succeeded at all (an endpoint that hangs, answers 503 or redirects once validated)."""
    reasons = ", ".join(f"{count:,} × {reason}"
                        for reason, count in sorted(run.failure_reasons.items(), key=lambda item: -item[1])[:3])
    if run.requests == 0:
        return "no request was answered during the load"
    if run.failures == run.requests:
        return f"no request succeeded after validation: {reasons}"
    if run.failures > allowed * run.requests:
        return (f"{run.failures:,} of {run.requests:,} requests failed ({run.failures / run.requests:.1%}, "
                f"more than the {allowed * 100:g}% allowed): {reasons}")
    other = run.bystander
    if other is not None and other.requests and other.failures > allowed * other.requests:
        return (f"the bystander's {other.method} {other.path} failed {other.failures:,} of {other.requests:,} "
                f"times (more than the {allowed * 100:g}% allowed)")
    return None


def per_second(tallies, name: str, users: Sequence[list], lag_samples: Sequence[tuple[float, float]],
               start: float, end: float) -> list[Second]:
    """The measured window a second at a time: a last fraction of a second joins the one before it."""
    from asyncguard.bench.tally import milliseconds

    seconds = max(1, round(end - start))
    lag_buckets: list[list] = [[] for _ in range(seconds)]
    for stamp, ms in lag_samples:
        if start <= stamp <= end:
            lag_buckets[min(int(stamp - start), seconds - 1)].append(ms)
    series = []
    for index, bucket in enumerate(tallies.seconds(name, seconds)):
        lags = sorted(lag_buckets[index])
        active = [count for stamp, count in users if stamp <= start + index + 1]
        covered = 1.0 if index < seconds - 1 else max(end - start - index, 1e-9)
        series.append(Second(
            second=index, rps=round(bucket.ok / covered, 2), errors=bucket.failures,
            p50=milliseconds(bucket.latency, 50), p95=milliseconds(bucket.latency, 95),
            p99=milliseconds(bucket.latency, 99), users=active[-1] if active else 0,
            lag_p99=percentile(lags, 0.99) if lags else None, lag_max=round(lags[-1], 3) if lags else None,
        ))
    return series
