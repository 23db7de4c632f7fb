"""The regression gate: `--fail-if "p99>+20%"`, `"rps<-10%"` against an earlier run (`--compare`), or absolute
limits on this run alone: `"p99>250ms"`, `"errors>1%"` (the share of requests that failed), `"rps<100"`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from asyncguard.bench.results import BenchResults, EndpointRun

METRICS = {
    "rps": lambda run: run.rps,
    "p50": lambda run: run.latency.p50,
    "p90": lambda run: run.latency.p90,
    "p95": lambda run: run.latency.p95,
    "p99": lambda run: run.latency.p99,
    "p999": lambda run: run.latency.p999,
    "max": lambda run: run.latency.max,
    "lag_p99": lambda run: run.lag.p99,
    "others_p99": lambda run: run.bystander.latency.p99 if run.bystander else 0.0,
    "errors": lambda run: run.failures,
}
LATENCIES = {"p50", "p90", "p95", "p99", "p999", "max", "lag_p99", "others_p99"}
"""Metrics in milliseconds: an absolute limit on them takes `ms` or `s`."""
UNITS = {"ms": 1.0, "s": 1000.0}
CONDITION = re.compile(r"^\s*(?P<metric>[a-z_0-9]+)\s*(?P<op>[<>])\s*(?P<sign>[+-]?)(?P<number>\d+(?:\.\d+)?)"
                       r"\s*(?P<unit>%|ms|s)?\s*$")
EXPECTED = ("expected METRIC>+N% or METRIC<-N% (a change from --compare's run), or an absolute limit: "
            "p99>250ms, errors>1%, rps<100; METRIC one of ")


class GateError(ValueError):
    """A `--fail-if` condition that cannot be read."""


@dataclass(frozen=True)
class Condition:
    metric: str
    greater: bool
    limit: float
    """Signed percent for a relative condition (`p99>+20%`: p99 grew by more than 20%); else the limit itself, in
    the metric's unit (ms, req/s, failed requests) or, for `errors>N%`, in percent of the requests."""
    relative: bool
    text: str
    share: bool = False
    """`errors>1%`: a limit on the share of requests that failed, in percent, not on their count."""

    def value(self, run: EndpointRun) -> float:
        """What an absolute limit is compared with, in this run."""
        if self.share:
            return run.failures / run.requests * 100 if run.requests else 0.0
        return METRICS[self.metric](run)

    def crossed(self, old: float | None, new: float) -> bool:
        """A relative condition compares `new` with `old` (a change from zero is crossed: it is infinite); an
        absolute one compares `new` with its limit."""
        if not self.relative:
            return new > self.limit if self.greater else new < self.limit
        if old == 0:
            return new > 0 if self.greater else new < 0
        delta = (new - old) / old * 100
        return delta > self.limit if self.greater else delta < self.limit


def parse_condition(text: str) -> Condition:
    match = CONDITION.match(text)
    metric = match and match["metric"]
    if not match or metric not in METRICS:
        raise GateError(f"cannot read --fail-if {text!r}: {EXPECTED}{', '.join(METRICS)}")
    greater, number, unit = match["op"] == ">", float(match["number"]), match["unit"]
    if match["sign"]:
        if unit != "%":
            raise GateError(f"cannot read --fail-if {text!r}: a signed change is in percent ({metric}>+20%)")
        return Condition(metric, greater, -number if match["sign"] == "-" else number, True, text.strip())
    if metric in LATENCIES and unit not in UNITS:
        raise GateError(f"cannot read --fail-if {text!r}: {metric} takes a limit in ms or s ({metric}>250ms), "
                        f"or a signed change ({metric}>+20%)")
    share = metric == "errors" and unit == "%"
    if metric not in LATENCIES and unit is not None and not share:
        raise GateError(f"cannot read --fail-if {text!r}: {metric} takes a plain number"
                        + (" or a share of the requests (errors>1%)" if metric == "errors" else "")
                        + f", or a signed change ({metric}<-10%)")
    return Condition(metric, greater, number * UNITS.get(unit or "", 1.0), False, text.strip(), share)


@dataclass(frozen=True)
class Delta:
    key: str
    metric: str
    old: float | None
    """The earlier run's value; None when `new` is checked against an absolute `limit`."""
    new: float
    crossed: Condition | None
    limit: Condition | None = None

    @property
    def percent(self) -> float | None:
        return None if not self.old else round((self.new - self.old) / self.old * 100, 1)


def run_key(run: EndpointRun) -> str:
    return f"{run.flaw}/{run.side}/{run.name}"


def compare(old: BenchResults, new: BenchResults, conditions: list[Condition]) -> list[Delta]:
    """Deltas of every gated metric (rps and p99 when no condition is relative) for runs present in both results
    (matched by flaw, side and endpoint)."""
    relative = [c for c in conditions if c.relative]
    before = {run_key(run): run for run in old.runs if run.error is None}
    deltas = []
    for run in new.runs:
        previous = before.get(run_key(run))
        if previous is None or run.error is not None:
            continue
        for metric in dict.fromkeys([c.metric for c in relative] or ["rps", "p99"]):
            old_value, new_value = METRICS[metric](previous), METRICS[metric](run)
            crossed = next((c for c in relative if c.metric == metric and c.crossed(old_value, new_value)), None)
            deltas.append(Delta(run_key(run), metric, old_value, new_value, crossed))
    return deltas


def check_limits(new: BenchResults, conditions: list[Condition]) -> list[Delta]:
    """Every absolute condition against every measured run of `new`: no earlier run needed."""
    return [Delta(run_key(run), condition.metric, None, value, condition if condition.crossed(None, value) else None,
                  condition)
            for run in new.runs if run.error is None
            for condition in conditions if not condition.relative
            for value in [condition.value(run)]]


def provenance_differences(old: BenchResults, new: BenchResults) -> list[str]:
    """What differs between the machines and software of two runs: their comparison is then weaker."""
    differences = []
    for key in ("cpu", "cores", "ram_gb"):
        a, b = old.provenance.machine.get(key), new.provenance.machine.get(key)
        if a != b:
            differences.append(f"machine {key}: {a} → {b}")
    if old.provenance.python != new.provenance.python:
        differences.append(f"python: {old.provenance.python} → {new.provenance.python}")
    for name in sorted(set(old.provenance.packages) | set(new.provenance.packages)):
        a, b = old.provenance.packages.get(name), new.provenance.packages.get(name)
        if a != b and name != "asyncguard":
            differences.append(f"{name}: {a} → {b}")
    if old.scenario.get("load") != new.scenario.get("load"):
        differences.append("load settings differ")
    return differences
