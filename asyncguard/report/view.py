"""From results to the plain data a page shows: every number formatted, every sentence written, charts drawn.

Pure functions: results in, dicts of strings and lists out. The templates only place what they are given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote, urlsplit

from asyncguard.bench.results import GC_PATH, LAG_BLOCKED_P99_MS, BenchResults, EndpointRun, StallSite, StaticFinding
from asyncguard.bench.lag import STALL_THRESHOLD_MS
from asyncguard.bench.stalls import BLOCKED_SHARE
from asyncguard.report import charts

HEALTHY_LAG_MS = 10.0
HELD_ROWS = 20
"""Stall sites in the page's "What held the loop" table, the longest first."""
"""A loop whose lag p99 stays under this kept up (FIELD-NOTES: healthy runs stay at or under ~11 ms)."""


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def divide(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass
class FlawGroup:
    """One flaw's runs: the flawed endpoint and its fixes (or an app's endpoints, all `target`)."""

    id: str
    runs: list[EndpointRun]

    @property
    def flawed(self) -> EndpointRun | None:
        return next((r for r in self.runs if r.side == "flawed" and not r.error), None)

    @property
    def fixed(self) -> EndpointRun | None:
        return next((r for r in self.runs if r.side == "fixed" and not r.error), None)

    def ratios(self) -> dict[str, float | None]:
        """Flawed against its first fix; None where either side is missing or zero."""
        flawed, fixed = self.flawed, self.fixed
        if flawed is None or fixed is None:
            return {}
        both_bystanders = flawed.bystander and fixed.bystander
        return {
            "rps": divide(flawed.rps, fixed.rps),
            "p50": divide(flawed.latency.p50, fixed.latency.p50),
            "p99": divide(flawed.latency.p99, fixed.latency.p99),
            "others_p99": divide(flawed.bystander.latency.p99, fixed.bystander.latency.p99)
            if both_bystanders else None,
            "lag_p99": divide(flawed.lag.p99, fixed.lag.p99),
        }

    def impact(self) -> float:
        """How much worse the flawed side is, by its worst measure: the summary is sorted by this."""
        found = self.ratios()
        candidates = [found.get("p99"), found.get("others_p99"),
                      1 / found["rps"] if found.get("rps") else None]
        return max((c for c in candidates if c is not None), default=0.0)


def group_runs(runs: Sequence[EndpointRun]) -> list[FlawGroup]:
    groups: dict[str, FlawGroup] = {}
    for run in runs:
        groups.setdefault(run.flaw, FlawGroup(run.flaw, [])).runs.append(run)
    return list(groups.values())


def verdict(group: FlawGroup) -> str:
    """The flaw in one sentence, from what was measured."""
    flawed, fixed = group.flawed, group.fixed
    if flawed is None or fixed is None:
        failed = next((r for r in group.runs if r.error), None)
        if failed is not None:
            return f"Could not be measured: {failed.error.splitlines()[0]}"
        return "Nothing to compare: a flawed endpoint and its fix are both needed."
    found = group.ratios()
    load = f"{flawed.users} users" if flawed.load_model == "closed" else f"{flawed.target_rps:g} req/s offered"
    others = ""
    if found.get("others_p99") is not None:
        others = (f"; other requests waited {ms(flawed.bystander.latency.p99)} ms at p99 instead of "
                  f"{ms(fixed.bystander.latency.p99)} ms ({ratio(found['others_p99'])})")
    numbers = (f"at {load}, p99 {ms(flawed.latency.p99)} ms against {ms(fixed.latency.p99)} ms fixed "
               f"({ratio(found['p99'])}), {flawed.rps:,.0f} against {fixed.rps:,.0f} req/s{others}")
    if flawed.blocked:
        return f"Blocks the event loop ({held_text(flawed)}; fixed: {held_text(fixed)}): {numbers}."
    if (found.get("rps") or 1) < 0.8 or (found.get("p99") or 0) > 1.5:
        return f"Does not block the loop (lag p99 {ms(flawed.lag.p99)} ms) but costs time: {numbers}."
    return f"No measurable cost at this load: {numbers}."


def held_text(run: EndpointRun) -> str:
    """How long the loop stood still, time-weighted when stalls were sampled, else by its lag."""
    if run.stalls is None:
        return f"lag p99 {ms(run.lag.p99)} ms"
    return f"stalled {run.stalls.share:.1%} of the time, longest {ms(run.stalls.longest_ms)} ms"


def loop_state(run: EndpointRun) -> str:
    if not run.lag.measured:
        return "not measured"
    if run.loop_verdict is not None:
        return run.loop_verdict
    if run.lag.blocked:
        return "blocked"
    return "healthy" if run.lag.p99 < HEALTHY_LAG_MS else "busy"


def static_match(site: StallSite, findings: Sequence[StaticFinding]) -> StaticFinding | None:
    """The checker's finding for the code that held the loop: at a line of the site's stack, or with a chain
    through one (the innermost such line wins)."""
    lines = [(frame.path, frame.line) for frame in reversed(site.stack)]
    best, rank = None, len(lines)
    for finding in findings:
        places = [(finding.path, finding.line), *((step.get("path"), step.get("line")) for step in finding.chain)]
        found = min((lines.index(place) for place in places if place in lines), default=None)
        if found is not None and found < rank:
            best, rank = finding, found
    return best


def held_rows(runs: Sequence[EndpointRun], findings: Sequence[StaticFinding], per_run: int | None = None) -> list:
    """What held the loop in these runs: each stall site with its share of the run's stall time and the static
    finding it confirms, or none (a blocker the checker missed). Runs that shared a server are shown once."""
    rows, shown = [], set()
    for run in runs:
        if run.error or run.stalls is None or id(run.stalls) in shown:
            continue
        shown.add(id(run.stalls))
        for site in run.stalls.top[:per_run]:
            collector = site.path == GC_PATH
            finding = None if collector else static_match(site, findings)
            rows.append({
                "run": f"{run.flaw} {run_label(run)}" if run.side != "target" else run.name,
                "site": "the garbage collector" if collector else f"{site.path}:{site.line}",
                "function": "" if collector else site.function, "collector": collector,
                "route": "–" if collector else site.route or "a background task or callback",
                "share": f"{site.stall_ms / run.stalls.total_ms:.0%}" if run.stalls.total_ms else "–",
                "stall_ms": ms(site.stall_ms), "held_ms": site.stall_ms, "count": f"{site.count:,}",
                "finding": f"{finding.code} at {finding.path}:{finding.line}" if finding else "",
                "stack": [f"{frame.path}:{frame.line} {frame.function}" for frame in site.stack],
            })
    return rows


def not_exercised(runs: Sequence[EndpointRun], findings: Sequence[StaticFinding]) -> list[StaticFinding]:
    """Findings on these runs' routes that no stall of theirs confirmed (the load never made them hold the loop)."""
    sites = [site for run in runs if run.stalls is not None for site in run.stalls.top]
    confirmed = {id(found) for site in sites if (found := static_match(site, findings)) is not None}
    return [finding for finding in findings if id(finding) not in confirmed]


def run_label(run: EndpointRun) -> str:
    return run.name if run.side == "target" else f"{run.side}: {run.name}"


def metrics_row(run: EndpointRun) -> dict:
    return {
        "label": run_label(run), "side": run.side, "error": run.error.splitlines()[0] if run.error else "",
        "requests": f"{run.requests:,}", "failures": f"{run.failures:,}", "rps": f"{run.rps:,.0f}",
        "saturated": run.saturated, "p50": ms(run.latency.p50), "p90": ms(run.latency.p90),
        "p95": ms(run.latency.p95), "p99": ms(run.latency.p99), "p999": ms(run.latency.p999),
        "max": ms(run.latency.max), "lag_p99": ms(run.lag.p99) if run.lag.measured else "–",
        "lag_max": ms(run.lag.max) if run.lag.measured else "–",
        "lag_samples": f"{run.lag.samples:,} of {run.lag.expected_samples:,}", "loop": loop_state(run),
        "others_p99": ms(run.bystander.latency.p99) if run.bystander else "–",
        "generator_cpu": f"{run.generator_cpu:.2f}", "generator_saturated": run.generator_saturated,
        "failure": run.failure or "",
        "failure_reasons": [f"{count:,} × {reason}" for reason, count in sorted(run.failure_reasons.items())],
    }


def route_pattern(context: str) -> re.Pattern[str] | None:
    """`path operation GET /users/{user_id}` → a pattern for the measured `GET /users/42?x=1`."""
    match = re.search(r"\b([A-Z]+) (/\S*)", context)
    if match is None:
        return None
    method, template = match.groups()
    path = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template))
    return re.compile(rf"{method} {path}(\?.*)?")


def findings_for(group: FlawGroup, results: BenchResults) -> list[StaticFinding]:
    """The manifest's (code, context) pairs for a suite flaw; the route's findings for an app's endpoint."""
    declared = next((f.findings for f in results.flaws if f.id == group.id), None)
    if declared is not None:
        pairs = {tuple(pair) for pair in declared}
        return [f for f in results.findings if (f.code, f.context) in pairs]
    names = [run.name for run in group.runs]
    return [f for f in results.findings
            if (pattern := route_pattern(f.context)) is not None and any(pattern.fullmatch(n) for n in names)]


def finding_view(finding: StaticFinding) -> dict:
    return {
        "code": finding.code, "rule": finding.rule, "message": finding.message, "suggestion": finding.suggestion,
        "location": f"{finding.path}:{finding.line}:{finding.column}", "context": finding.context,
        "lines": [{"number": finding.excerpt_start + offset, "text": text,
                   "marked": finding.excerpt_start + offset == finding.line}
                  for offset, text in enumerate(finding.excerpt)],
        "chain": [f"{step.get('name', '?')} ({step.get('path', '?')}:{step.get('line', '?')})"
                  for step in finding.chain],
    }


def relative_href(path: str) -> str | None:
    """A link to a file under the page's directory, percent-encoded (`#`, `?` and `:` are parts of a name there);
    None for anything else: a scheme (`javascript:`, `data:`, `http:`), an absolute path or `//host`, a `..`."""
    try:
        scheme = urlsplit(path).scheme  # read as browsers read it: ` javascript:` and `java\tscript:` have one
    except ValueError:  # `a://[`: not even a URL
        return None
    if scheme or not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return quote(path, safe="/")


def link(path: str) -> dict:
    """A path from the results as a page shows it: linked when it is relative, as text when it is not."""
    return {"href": relative_href(path), "path": path}


def profile_view(run: EndpointRun) -> dict | None:
    profile = run.profile
    if profile is None:
        return None
    return {
        "label": run_label(run), "html": link(profile.html), "speedscope": link(profile.speedscope),
        "duration": f"{profile.duration:.1f}",
        "blocking": (f"{profile.blocking_share:.0%} of the samples in {', '.join(profile.blocking_frames)}"
                     if profile.blocking_frames else ""),
        "frames": [{"function": frame.function, "where": f"{frame.file}:{frame.line}" if frame.line else frame.file,
                    "self": f"{frame.self_seconds:.3f}", "share": f"{frame.share:.1%}"}
                   for frame in profile.top_frames],
    }


def chart_series(group: FlawGroup, values, bystander_values=None) -> list[dict]:
    """One line per measured run (`values(run)` gives its numbers) and, given `bystander_values`, one per run's
    bystander: what other requests saw during that run."""
    index: dict[str, int] = {}
    series = []
    for run in group.runs:
        if run.error:
            continue
        position = index.get(run.side, 0)
        series.append({"label": run_label(run), "side": run.side, "index": position, "values": values(run)})
        if bystander_values is not None and run.bystander is not None:
            series.append({"label": f"others during {run.side}", "side": run.side, "index": position,
                           "bystander": True, "values": bystander_values(run)})
        index[run.side] = position + 1
    return series


def group_charts(group: FlawGroup) -> list[dict]:
    """Each chart with its table equivalent: {id, title, svg, columns, rows}."""
    measured = [run for run in group.runs if not run.error]
    if not measured:
        return []
    labels = [run_label(run) for run in measured]
    seconds = max(len(run.series) for run in measured)

    def per_second(attribute: str) -> list[list[str]]:
        return [[str(second)] + [ms(getattr(run.series[second], attribute)) if second < len(run.series) else "–"
                                 for run in measured] for second in range(seconds)]

    def percentile_values(latency) -> list[float]:
        return [getattr(latency, p) for p in charts.PERCENTILES]

    bystander_rows = [[f"others during {run_label(run)}", *(ms(v) for v in percentile_values(run.bystander.latency))]
                      for run in measured if run.bystander]
    return [
        {"id": f"{group.id}-percentiles", "title": "Response time percentiles (ms, log scale; dotted: others)",
         "svg": charts.percentile_chart(
             chart_series(group, lambda run: percentile_values(run.latency),
                          lambda run: percentile_values(run.bystander.latency)), f"{group.id}: percentiles"),
         "columns": ["run", *charts.PERCENTILE_LABELS],
         "rows": [[run_label(run), *(ms(v) for v in percentile_values(run.latency))] for run in measured]
                 + bystander_rows},
        {"id": f"{group.id}-rps", "title": "Requests per second, each second",
         "svg": charts.timeline_chart(chart_series(group, lambda run: [s.rps for s in run.series]),
                                      f"{group.id}: requests per second", "req/s"),
         "columns": ["second", *labels], "rows": per_second("rps")},
        {"id": f"{group.id}-p99", "title": "p99 response time each second (ms, log scale)",
         "svg": charts.timeline_chart(chart_series(group, lambda run: [s.p99 or None for s in run.series]),
                                      f"{group.id}: p99 per second", "p99 (ms)", log=True),
         "columns": ["second", *labels], "rows": per_second("p99")},
        {"id": f"{group.id}-lag", "title": f"Event-loop lag p99 each second (ms; dotted: {LAG_BLOCKED_P99_MS:g} ms)",
         "svg": charts.timeline_chart(chart_series(group, lambda run: [s.lag_p99 for s in run.series]),
                                      f"{group.id}: loop lag per second", "lag p99 (ms)", log=True,
                                      threshold=LAG_BLOCKED_P99_MS),
         "columns": ["second", *labels], "rows": per_second("lag_p99")},
    ]


def summary_row(group: FlawGroup, title: str) -> dict:
    flawed, fixed, found = group.flawed, group.fixed, group.ratios()

    def pair(value) -> str:
        return f"{value(flawed)} → {value(fixed)}" if flawed and fixed else "–"

    return {
        "id": group.id, "title": title, "impact": ratio(group.impact()) if found else "–",
        "blocked": bool(flawed and flawed.blocked),
        "rps": pair(lambda run: f"{run.rps:,.0f}"), "rps_ratio": ratio(found.get("rps")),
        "p50": pair(lambda run: ms(run.latency.p50)),
        "p99": pair(lambda run: ms(run.latency.p99)), "p99_ratio": ratio(found.get("p99")),
        "others_p99": pair(lambda run: ms(run.bystander.latency.p99) if run.bystander else "–"),
        "lag_p99": pair(lambda run: ms(run.lag.p99)),
        "error": next((r.error.splitlines()[0] for r in group.runs if r.error), ""),
        "failed": next((r.failure for r in group.runs if r.failure), ""),
    }


def endpoint_row(run: EndpointRun) -> dict:
    """A summary row of one endpoint of your own app: its own numbers and its own verdict (one endpoint that blocks
    is never summarised with the others as "ok")."""
    return {
        "id": run.flaw, "title": run.name, "loop": loop_state(run), "rps": f"{run.rps:,.0f}",
        "p50": ms(run.latency.p50), "p99": ms(run.latency.p99),
        "others_p99": ms(run.bystander.latency.p99) if run.bystander else "–",
        "lag_p99": ms(run.lag.p99) if run.lag.measured else "–",
        "error": run.error.splitlines()[0] if run.error else "", "failed": run.failure or "",
    }


def provenance_rows(results: BenchResults) -> list[list[str]]:
    prov, load = results.provenance, results.scenario.get("load", {})
    machine = prov.machine
    model = ("closed loop: each user sends its next request when the last one is answered" if not load.get("rate")
             else f"constant arrival rate: {load['rate']:g} req/s offered")
    commit = prov.git.get("commit") or "unknown"
    return [
        ["Machine", f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
                    f"{machine.get('ram_gb', '?')} GiB RAM, {machine.get('os', '?')}"],
        ["Python", prov.python],
        ["Packages", ", ".join(f"{name} {version}" for name, version in sorted(prov.packages.items()))],
        ["Commit", commit[:12] + (" (uncommitted changes)" if prov.git.get("dirty") else "")],
        ["Started", prov.started],
        ["Load model", model],
        ["Users", str(load.get("users", "?"))],
        ["Warm-up, measured", f"{load.get('warmup', '?')} s excluded, then {load.get('duration', '?')} s measured "
                              f"per endpoint"],
        ["Bystander", f"one request every {load.get('bystander_interval', 0.05) * 1000:.0f} ms on its own "
                      "connection, timed as another client"],
        ["Profile", f"a separate server, {load.get('profile_users', '?')} users for "
                    f"{load.get('profile_duration', '?')} s, one pyinstrument session" if load.get("profile")
                    else "off"],
        ["Command", " ".join(prov.command)],
        ["Complete", "yes" if results.complete else "no: the run was interrupted; what is here was measured"],
    ]


def run_page(results: BenchResults) -> dict:
    """Everything `run.html.j2` shows for one results file."""
    titles = {flaw.id: flaw for flaw in results.flaws}
    groups = group_runs(results.runs)
    matched = {group.id: findings_for(group, results) for group in groups}
    shown = {id(finding) for found in matched.values() for finding in found}
    sections = []
    for group in groups:
        flaw = titles.get(group.id)
        sections.append({
            "id": group.id, "title": flaw.title if flaw else group.id, "why": flaw.why if flaw else "",
            "fix": flaw.fix if flaw else "", "note": flaw.note if flaw else "",
            "verdict": verdict(group) if flaw else "",
            "findings": [finding_view(f) for f in matched[group.id]],
            "expects_findings": bool(flaw and flaw.findings),
            "metrics": [metrics_row(run) for run in group.runs],
            "charts": group_charts(group),
            "profiles": [view for view in map(profile_view, group.runs) if view],
            "held": held_rows(group.runs, results.findings, per_run=3),
            "not_exercised": [finding_view(f) for f in not_exercised(group.runs, matched[group.id])
                              if any(run.stalls is not None for run in group.runs)],
        })
    ranked = sorted(groups, key=lambda g: -g.impact())
    return {
        "title": "asyncguard bench report",
        "suite": bool(results.flaws),
        "summary": ([summary_row(g, titles[g.id].title if g.id in titles else g.id) for g in ranked]
                    if results.flaws else [endpoint_row(run) for run in results.runs]),
        "sections": sections,
        "held": sorted(held_rows(results.runs, results.findings), key=lambda row: -row["held_ms"])[:HELD_ROWS],
        "provenance": provenance_rows(results),
        "errors": [{"label": f"{run.flaw} {run_label(run)}", "error": run.error} for run in results.runs
                   if run.error],
        "unmatched_findings": [finding_view(f) for f in results.findings if id(f) not in shown],
        "complete": results.complete,
        "blocked_threshold": ms(LAG_BLOCKED_P99_MS),
        "stall_threshold": ms(STALL_THRESHOLD_MS), "blocked_share": f"{BLOCKED_SHARE:.0%}",
    }


def lint_page(findings: Sequence[StaticFinding], files_checked: int) -> dict:
    """`asyncguard check --format html`: the findings by file, each with its code."""
    by_file: dict[str, list[dict]] = {}
    for finding in findings:
        by_file.setdefault(finding.path, []).append(finding_view(finding))
    counts: dict[tuple[str, str], int] = {}
    for finding in findings:
        counts[(finding.code, finding.rule)] = counts.get((finding.code, finding.rule), 0) + 1
    return {
        "title": "asyncguard check",
        "headline": (f"{len(findings):,} finding{'s' * (len(findings) != 1)} in {len(by_file):,} of "
                     f"{files_checked:,} file{'s' * (files_checked != 1)}.") if findings
                    else f"All checks passed ({files_checked:,} file{'s' * (files_checked != 1)}).",
        "rules": [[code, rule, f"{count:,}"] for (code, rule), count in sorted(counts.items())],
        "files": [{"path": path, "findings": items} for path, items in by_file.items()],
    }
