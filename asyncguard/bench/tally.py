"""Bounded statistics of a load: for each request name and second, HDR histograms of latency and the counts of
requests, statuses and failures.

The load generator records every answer here instead of keeping it: memory grows with the seconds and the names,
not with the requests (a 10-minute soak at thousands of requests a second fits). Histograms keep two significant
digits of each microsecond value (a relative error under 1%), merge across seconds and Locust workers, and travel
encoded (HdrHistogram's compressed base64). A second is counted from the end of the warm-up (negative ones are the
warm-up's): under a constant rate a request belongs to the second it fell due in, else to the one it was answered in.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS = 1, 3_600_000_000, 2
"""A microsecond to an hour, two significant digits."""


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(histogram: HdrHistogram, milliseconds: float) -> None:
    histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(milliseconds * 1000))))


@dataclass
class Tally:
    """The answers to one request name in one second (or, merged, in a window)."""

    latency: HdrHistogram = field(default_factory=new_histogram)
    """Of the successful answers; under a constant rate from each request's intended send."""
    actual: HdrHistogram | None = None
    """Of the successful answers, from each request's actual send, when that differs (a constant rate): a closed
    loop sends when it intends, and keeps one histogram, not two."""
    requests: int = 0
    reasons: Counter = field(default_factory=Counter)
    """Failures by reason (`HTTP 500`, a timeout)."""
    codes: Counter = field(default_factory=Counter)
    """Answers by status (0: none came)."""

    @property
    def ok(self) -> int:
        return self.latency.get_total_count()

    @property
    def failures(self) -> int:
        return self.requests - self.ok

    @property
    def uncorrected(self) -> HdrHistogram:
        """Latency from each actual send, blind to the requests a stalled sender never sent on time."""
        return self.latency if self.actual is None else self.actual

    def add(self, other: "Tally") -> None:
        self.latency.add(other.latency)
        if other.actual is not None:
            if self.actual is None:
                self.actual = new_histogram()
            self.actual.add(other.actual)
        self.requests += other.requests
        self.reasons.update(other.reasons)
        self.codes.update(other.codes)

    def to_json(self) -> list:
        actual = None if self.actual is None else self.actual.encode().decode("ascii")
        return [self.requests, self.latency.encode().decode("ascii"), actual, dict(self.reasons), dict(self.codes)]

    @classmethod
    def from_json(cls, data: list) -> "Tally":
        requests, latency, actual, reasons, codes = data
        return cls(HdrHistogram.decode(latency), actual and HdrHistogram.decode(actual), requests, Counter(reasons),
                   Counter(codes))


class Tallies:
    """Every answer of a load, by request name and second from `origin` (the end of the warm-up, wall time)."""

    def __init__(self, origin: float = 0.0):
        self.origin = origin
        self.by_second: dict[tuple[str, int], Tally] = {}

    def record(self, name: str, when: float, latency_ms: float, status: int, failure: str | None,
               actual_ms: float | None = None) -> None:
        """One answer (or failure) of `name`, counted in the second of `when`."""
        key = (name, math.floor(when - self.origin))
        tally = self.by_second.get(key)
        if tally is None:
            tally = self.by_second[key] = Tally()
        tally.requests += 1
        tally.codes[str(status)] += 1
        if failure is None:
            record(tally.latency, latency_ms)
            if actual_ms is not None:
                if tally.actual is None:
                    tally.actual = new_histogram()
                record(tally.actual, actual_ms)
        else:
            tally.reasons[failure] += 1

    def names(self) -> list[str]:
        """The request names answered after the warm-up, in the order they were first answered at all: a user's
        first steps run in the warm-up, so the order is its task's, not where the warm-up happened to cut it."""
        measured = {name for name, second in self.by_second if second >= 0}
        ordered = sorted(self.by_second, key=lambda key: key[1])  # stable: in a second, the order first answered
        return [name for name in dict.fromkeys(name for name, _ in ordered) if name in measured]

    def window(self, name: str, first: int = 0, last: int | None = None) -> Tally:
        """`name`'s answers in seconds `first` to `last` (no end: every second from `first` on)."""
        merged = Tally()
        for (named, second), tally in self.by_second.items():
            if named == name and second >= first and (last is None or second <= last):
                merged.add(tally)
        return merged

    def seconds(self, name: str, count: int) -> list[Tally]:
        """`name`'s answers in each of `count` seconds, the later ones joined to the last (its fraction)."""
        buckets = [Tally() for _ in range(count)]
        for (named, second), tally in self.by_second.items():
            if named == name and second >= 0:
                buckets[min(second, count - 1)].add(tally)
        return buckets

    def recent(self, second: int, skip: str) -> Tally:
        """Every name's answers in one second but `skip`'s (the live display: the load's last second)."""
        merged = Tally()
        for (named, at), tally in self.by_second.items():
            if at == second and named != skip:
                merged.add(tally)
        return merged

    def merge(self, rows: Iterable[list]) -> None:
        """Another process's `to_json` (a Locust worker's)."""
        for name, second, data in rows:
            key = (name, second)
            incoming = Tally.from_json(data)
            if key in self.by_second:
                self.by_second[key].add(incoming)
            else:
                self.by_second[key] = incoming

    def to_json(self) -> list[list]:
        return [[name, second, tally.to_json()] for (name, second), tally in self.by_second.items()]

    @classmethod
    def from_json(cls, rows: Iterable[list], origin: float) -> "Tallies":
        made = cls(origin)
        made.merge(rows)
        return made


def milliseconds(histogram: HdrHistogram, percentile: float) -> float:
    return round(histogram.get_value_at_percentile(percentile) / 1000, 3) if histogram.get_total_count() else 0.0
