"""Which code held the loop, and the verdict a busy machine cannot fool: the watchdog's stall records, summarised.

The server's lag wrapper (`asyncguard.bench.lag.StallWatch`) writes a JSON line for each stall: its duration, the
loop thread's stacks sampled meanwhile (each with the request it served and how many samples one call held), and
the thread's CPU and run-queue time over the stall. Here a run's stalls become time-weighted measures, the sites
that held the loop, and one verdict: `blocked` when one call at a time held it, `busy` when many short steps
saturated it (the garbage collector's passes among them: the runtime's, not a call's), `contended` when it stood still
because the machine did not run its thread (or it waited in the selector), else `healthy`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Field, TypeAdapter

from asyncguard.bench.lag import STALL_THRESHOLD_MS, relative
from asyncguard.bench.results import GC_PATH, LAG_BLOCKED_P99_MS, LagSummary, StallFrame, StallSite, StallSummary

BLOCKED_SHARE = 0.01
"""Of the wall time, held by code in stalls (1%: 10 ms a second) for the loop to be `blocked`."""
STALLED_SHARE = 0.01
"""Of the wall time, stalled for any reason, before a stall is more than noise."""
CONTENDED_RUNQUEUE = 0.25
"""Share of stall time the loop's thread waited for a CPU for the stalls to be the machine's."""
BUSY_LOOP_CPU = 0.90
"""Share of the wall time the loop's thread ran for a loop without long stalls to be `busy`."""
TOP_SITES = 8
GC_SITE = (GC_PATH, 0, "garbage collection", None)
GC_STACK = ((GC_PATH, 0, "garbage collection"),)


Count = Annotated[int, Field(strict=True, ge=0)]
Milliseconds = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Stamp = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Stall(BaseModel):
    """A stall line as the wrapper writes it: numbers that are numbers (a string is not coerced), none negative."""

    stall: Stamp
    ms: Milliseconds
    stacks: list[tuple[Annotated[int, Field(strict=True, ge=1)], Count, Optional[str],
                       list[tuple[str, int, str, Literal["app", "library", "idle"]]]]]
    cpu_ms: Optional[Milliseconds] = None
    runqueue_ms: Optional[Milliseconds] = None
    gc_ms: Optional[Milliseconds] = None
    watch_ms: Optional[Milliseconds] = None


class _CpuTotals(BaseModel):
    cpu: Stamp
    cpu_ms: Milliseconds
    runqueue_ms: Milliseconds


_RECORD = TypeAdapter(Union[_Stall, _CpuTotals])


def read_lag_file(path: Path) -> tuple[list[tuple[float, float]], list[dict]]:
    """A lag file in one read: its samples, `(unix time, lag in ms)`, and its JSON lines (stalls and CPU totals).
    A line cut short by a crash, or not written by the wrapper, is skipped."""
    samples: list[tuple[float, float]] = []
    records: list[dict] = []
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return samples, records
    for line in lines:
        try:
            if line.startswith("{"):
                records.append(_RECORD.validate_python(json.loads(line)).model_dump(exclude_none=True))
            else:
                stamp, _, ms = line.partition(" ")
                samples.append((float(stamp), float(ms)))
        except ValueError:  # pydantic's ValidationError is one
            continue
    return samples, records


@dataclass
class _Site:
    count: int = 0
    stall_ms: float = 0.0
    stacks: dict = field(default_factory=lambda: defaultdict(float))


def summarize_stalls(records: list[dict], start: float, end: float, base: Path | None = None) -> StallSummary:
    """The stalls that began in the measured window `[start, end]` (unix time), time-weighted."""
    window_ms = max(end - start, 1e-9) * 1000
    stalls = [r for r in records if "stall" in r and start <= r["stall"] <= end]
    summary = StallSummary(threshold_ms=STALL_THRESHOLD_MS, count=len(stalls))
    sites: dict[tuple, _Site] = defaultdict(_Site)
    for stall in stalls:
        duration = stall["ms"]
        collecting = min(duration, max(0.0, stall.get("gc_ms", 0.0)))
        waiting = min(duration - collecting, max(0.0, stall.get("runqueue_ms", 0.0) - stall.get("watch_ms", 0.0)))
        in_code = duration - collecting - waiting  # the time the samples speak for
        samples = sum(count for count, *_ in stall["stacks"])
        running = sum(count for count, _, _, frames in stall["stacks"] if frames and frames[0][3] != "idle")
        held = sum(kept for _, kept, _, frames in stall["stacks"] if frames and frames[0][3] != "idle")
        summary.total_ms += duration
        summary.longest_ms = max(summary.longest_ms, duration)
        summary.wait_per_request_ms += duration * duration / 2 / window_ms
        summary.runqueue_ms += waiting
        summary.gc_ms += collecting
        if samples:
            summary.attributed_ms += in_code * running / samples
            summary.held_ms += in_code * held / samples
        if collecting:
            sites[GC_SITE].count += 1
            sites[GC_SITE].stall_ms += collecting
            sites[GC_SITE].stacks[GC_STACK] += collecting
        seen_in_stall = set()
        for count, _, route, frames in stall["stacks"]:
            if not frames or frames[0][3] == "idle":
                continue
            site = site_frame(frames)
            key = (relative(site[0], base), site[1], site[2], route)
            if key not in seen_in_stall:
                seen_in_stall.add(key)
                sites[key].count += 1
            share = in_code * count / samples
            sites[key].stall_ms += share
            sites[key].stacks[tuple((relative(f[0], base), f[1], f[2]) for f in reversed(frames))] += share
    summary.share = summary.total_ms / window_ms
    summary.per_second = len(stalls) / (window_ms / 1000)
    summary.loop_cpu = loop_cpu_share(records, start, end)
    summary.top = [
        StallSite(path, line, function, route, site.count, round(site.stall_ms, 3),
                  [StallFrame(*frame) for frame in max(site.stacks, key=site.stacks.get)])
        for (path, line, function, route), site in sorted(sites.items(), key=lambda item: -item[1].stall_ms)
    ][:TOP_SITES]
    for name in ("total_ms", "attributed_ms", "held_ms", "runqueue_ms", "gc_ms", "longest_ms", "wait_per_request_ms"):
        setattr(summary, name, round(getattr(summary, name), 3))
    summary.share, summary.per_second = round(summary.share, 5), round(summary.per_second, 3)
    return summary


def site_frame(frames: list) -> list:
    """The deepest frame of the app's own code in a stack (innermost first), else its innermost frame."""
    return next((frame for frame in frames if frame[3] == "app"), frames[0])


def loop_cpu_share(records: list[dict], start: float, end: float) -> float | None:
    """The loop thread's CPU time over the wall time between its first and last totals in the window."""
    totals = [r for r in records if "cpu" in r and start <= r["cpu"] <= end]
    if len(totals) < 2 or totals[-1]["cpu"] <= totals[0]["cpu"]:
        return None
    wall_ms = (totals[-1]["cpu"] - totals[0]["cpu"]) * 1000
    return round((totals[-1]["cpu_ms"] - totals[0]["cpu_ms"]) / wall_ms, 4)


def loop_verdict(lag: LagSummary, stalls: StallSummary | None, window_s: float) -> str | None:
    """What held the loop: see the module's docstring. Without stall records, the lag's own verdict."""
    if not lag.measured:
        return None
    if stalls is None:
        return "blocked" if lag.blocked else "healthy"
    window_ms = max(window_s, 1e-9) * 1000
    if stalls.held_ms / window_ms >= BLOCKED_SHARE:
        return "blocked"
    if stalls.share >= STALLED_SHARE or lag.p99 > LAG_BLOCKED_P99_MS:
        contended = stalls.runqueue_ms >= CONTENDED_RUNQUEUE * stalls.total_ms or \
            stalls.attributed_ms + stalls.gc_ms < 0.5 * stalls.total_ms
        return "contended" if contended else "busy"
    if stalls.loop_cpu is not None and stalls.loop_cpu >= BUSY_LOOP_CPU:
        return "busy"
    return "healthy"
