"""The comparison page: two or more results side by side, each metric's change against the first (the baseline)."""

from __future__ import annotations

from asyncguard.bench.compare import METRICS, provenance_differences, run_key
from asyncguard.bench.results import BenchResults
from asyncguard.report.view import ms

COMPARED = (("rps", "req/s"), ("p50", "p50 ms"), ("p99", "p99 ms"), ("others_p99", "others p99 ms"),
            ("lag_p99", "lag p99 ms"))
LOWER_IS_BETTER = {"p50", "p99", "others_p99", "lag_p99"}


def change(old: float, new: float, metric: str) -> dict:
    """Δ% against the baseline, and whether it is better or worse (within ±5% is noise on these machines)."""
    if not old:
        return {"text": "–", "tone": ""}
    percent = (new - old) / old * 100
    worse = percent > 0 if metric in LOWER_IS_BETTER else percent < 0
    tone = "" if abs(percent) < 5 else "bad" if worse else "good"
    return {"text": f"{percent:+.0f}%", "tone": tone}


def comparison_page(runs: list[tuple[str, BenchResults]]) -> dict:
    """`runs`: (label, results), the first one the baseline."""
    (base_label, baseline), others = runs[0], runs[1:]
    indexed = [(label, {run_key(run): run for run in results.runs if run.error is None}) for label, results in runs]
    keys = list(dict.fromkeys(key for _, found in indexed for key in found))
    rows = []
    for key in keys:
        base = indexed[0][1].get(key)
        row = {"key": key, "cells": []}
        for metric, _ in COMPARED:
            values = []
            for position, (_, found) in enumerate(indexed):
                run = found.get(key)
                if run is None:
                    values.append({"value": "–", "text": "", "tone": ""})
                    continue
                value = METRICS[metric](run)
                shown = f"{value:,.0f}" if metric == "rps" else ms(value)
                delta = change(METRICS[metric](base), value, metric) if position and base else {"text": "",
                                                                                              "tone": ""}
                values.append({"value": shown, **delta})
            row["cells"].append(values)
        rows.append(row)
    return {
        "title": "asyncguard bench comparison",
        "labels": [label for label, _ in runs],
        "baseline": base_label,
        "metrics": [title for _, title in COMPARED],
        "rows": rows,
        "warnings": [f"{label}: {difference}" for label, results in others
                     for difference in provenance_differences(baseline, results)],
        "started": [results.provenance.started for _, results in runs],
    }
