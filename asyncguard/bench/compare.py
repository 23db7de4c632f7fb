"""The regression gate: compare a run with an earlier one, `--fail-if "p99>+20%"`, `--fail-if "rps<-10%"`."""

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
CONDITION = re.compile(r"^\s*(?P<metric>[a-z_0-9]+)\s*(?P<op>[<>])\s*(?P<change>[+-]?\d+(?:\.\d+)?)\s*%\s*$")


class GateError(ValueError):
    """A `--fail-if` condition that cannot be read."""


@dataclass(frozen=True)
class Condition:
    metric: str
    greater: bool
    change: float
    """Relative change in percent, signed: `p99>+20%` fails when p99 grew by more than 20%."""
    text: str

    def crossed(self, old: float, new: float) -> bool:
        if old == 0:
            return False
        delta = (new - old) / old * 100
        return delta > self.change if self.greater else delta < self.change


def parse_condition(text: str) -> Condition:
    match = CONDITION.match(text)
    if not match or match["metric"] not in METRICS:
        raise GateError(f"cannot read --fail-if {text!r}: expected METRIC>+N% or METRIC<-N% with METRIC one of "
                        f"{', '.join(METRICS)}")
    return Condition(match["metric"], match["op"] == ">", float(match["change"]), text.strip())


@dataclass(frozen=True)
class Delta:
    key: str
    metric: str
    old: float
    new: float
    crossed: Condition | None

    @property
    def percent(self) -> float | None:
        return None if self.old == 0 else round((self.new - self.old) / self.old * 100, 1)


def run_key(run: EndpointRun) -> str:
    return f"{run.flaw}/{run.side}/{run.name}"


def compare(old: BenchResults, new: BenchResults, conditions: list[Condition]) -> list[Delta]:
    """Deltas of every gated metric for runs present in both results (matched by flaw, side and endpoint)."""
    before = {run_key(run): run for run in old.runs if run.error is None}
    deltas = []
    for run in new.runs:
        previous = before.get(run_key(run))
        if previous is None or run.error is not None:
            continue
        for metric in dict.fromkeys([c.metric for c in conditions] or ["rps", "p99"]):
            old_value, new_value = METRICS[metric](previous), METRICS[metric](run)
            crossed = next((c for c in conditions if c.metric == metric and c.crossed(old_value, new_value)), None)
            deltas.append(Delta(run_key(run), metric, old_value, new_value, crossed))
    return deltas


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
