"""The HTML report: what an engineer reads, escaped, deterministic, and as a browser shows it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from asyncguard.bench.results import BenchResults, LagSummary
from asyncguard.report.html import render_comparison, render_lint, render_run, runs_index
from asyncguard.report.view import run_page
from browser import Page
from conftest import ROOT
from sample_results import make_results, run

GOLDEN = ROOT / "tests" / "golden"
ATTACK = "<script>alert('x')</script>\"' onmouseover=\"alert(1)\""
SCREENSHOTS = ROOT / "reports" / "screenshots"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asyncguard", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def saved(tmp_path: Path, name: str, results: BenchResults) -> Path:
    path = tmp_path / name / "results.json"
    results.save(path)
    return path


def elements(html: str) -> list[tuple[str, dict]]:
    """Every element a browser would build from the page, with its attributes."""
    found = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(html)
    return found


def normalised(html: str) -> str:
    """Charts stand for their titles (matplotlib's drawing is its own business), timestamps are stripped."""
    html = re.sub(r"<svg\b.*?</svg>", lambda m: "<svg>" + "".join(re.findall(r"<title>(.*?)</title>",
                                                                             m.group(0))[:1]) + "</svg>",
                  html, flags=re.S)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-Z0-9:]*", "<timestamp>", html)


def test_summary_is_sorted_by_impact_and_says_what_was_measured():
    page = run_page(make_results())
    assert [row["id"] for row in page["summary"]] == ["sleep", "sync-db"]  # sync-db has no fix to compare with
    sleep = next(s for s in page["sections"] if s["id"] == "sleep")
    assert sleep["verdict"].startswith("Blocks the event loop (lag p99 250 ms; fixed: lag p99 3.0 ms)")
    assert "other requests waited 690 ms at p99 instead of 12.0 ms" in sleep["verdict"]
    assert [f["code"] for f in sleep["findings"]] == ["AG101"]
    assert len(sleep["charts"]) == 4 and all(chart["rows"] for chart in sleep["charts"])
    database = next(s for s in page["sections"] if s["id"] == "sync-db")
    assert database["verdict"].startswith("Could not be measured: GET /fixed/db: HTTP 500")
    assert [f["code"] for f in page["unmatched_findings"]] == ["AG104"]
    assert page["errors"][0]["error"].startswith("GET /fixed/db: HTTP 500")


def test_every_value_from_code_or_results_is_escaped():
    results = make_results(ATTACK)
    other = make_results(ATTACK, rps_scale=0.5, cores=64)
    pages = {
        "run": render_run(results),
        "compare": render_comparison([(f"old{ATTACK}", results), (f"new{ATTACK}", other)]),
        "lint": render_lint(results.findings, 3),
    }
    for name, html in pages.items():
        tags = elements(html)
        assert "script" not in {tag for tag, _ in tags}, name
        assert not [attrs for _, attrs in tags if any(key.startswith("on") for key in attrs)], name
        assert "&lt;script&gt;" in html, name  # shown as text, not dropped


def test_runs_index_escapes_and_lists_newest_first(tmp_path):
    old = saved(tmp_path, "old", make_results(started="2026-11-30T10:00:00+00:00"))
    new = saved(tmp_path, f"new{ATTACK[:8]}", make_results(ATTACK, started="2026-12-01T10:00:00+00:00"))
    html = runs_index(tmp_path, [(old, BenchResults.load(old)), (new, BenchResults.load(new))])
    assert html.index("2026-12-01") < html.index("2026-11-30") and "<script" not in html


def test_rendering_is_deterministic_and_matches_the_golden_file():
    first, second = render_run(make_results()), render_run(make_results())
    assert first == second, "same results, same page (charts included)"
    golden = GOLDEN / "run.html"
    if os.environ.get("ASYNCGUARD_UPDATE_GOLDEN"):
        golden.write_text(normalised(first), encoding="utf-8")
    assert normalised(first) == golden.read_text(encoding="utf-8"), \
        "the page changed: look at it, then ASYNCGUARD_UPDATE_GOLDEN=1 pytest tests/test_report.py"


def test_report_command_writes_a_run_page_and_a_comparison(tmp_path):
    old = saved(tmp_path, "old", make_results())
    new = saved(tmp_path, "new", make_results(rps_scale=0.5, cores=64))
    single = cli("report", str(old.parent))
    assert single.returncode == 0, single.stderr
    assert (old.parent / "index.html").read_text().count("<svg") == 8
    compared = cli("report", str(old), str(new), "--out", str(tmp_path / "cmp"))
    assert compared.returncode == 0, compared.stderr
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "-50%" in html and "machine cores: 2 → 64" in html


def test_report_lists_runs_in_a_reports_directory(tmp_path):
    reports = tmp_path / "reports"
    first = saved(reports, "20261201-070000", make_results())
    assert cli("report", str(first)).returncode == 0
    assert "20261201-070000/index.html" in (reports / "index.html").read_text()


@pytest.mark.parametrize("content,message", [
    (None, "cannot read"), ("{not json", "is not an asyncguard results file"),
    ('{"schema_version": 99}', "is not an asyncguard results file"),
])
def test_report_of_bad_input_is_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    process = cli("report", str(path))
    assert process.returncode == 2 and message in process.stderr
    assert "Traceback" not in process.stderr and process.stderr.count("\n") == 1


def test_check_writes_an_html_page_of_findings(tmp_path):
    out = tmp_path / "lint.html"
    process = cli("check", "sample_apps", "--no-cache", "--format", "html", "--output-file", str(out))
    assert process.returncode == 1, process.stderr
    html = out.read_text()
    assert "blocking-sleep-in-async-function" in html and 'class="marked"' in html
    assert "sample_apps/shop/routers/flawed.py" in html and "<script" not in html


def test_the_report_in_a_browser_has_every_chart_and_table_and_no_error(tmp_path):
    results_path = saved(tmp_path, "run", make_results())
    assert cli("report", str(results_path)).returncode == 0
    page_path = results_path.parent / "index.html"
    with Page() as page:
        page.open(page_path.as_uri())
        charts = page.evaluate("document.querySelectorAll('figure.chart svg').length")
        tables = page.evaluate("document.querySelectorAll('table').length")
        sections = page.evaluate("[...document.querySelectorAll('section h2')].map(h => h.textContent)")
        visible = page.evaluate("[...document.querySelectorAll('figure.chart svg')]"
                                ".every(svg => svg.getBoundingClientRect().width > 200)")
        summary = page.evaluate("document.querySelector('#summary + table tbody').innerText")
        held = page.evaluate("[...document.querySelectorAll('table.held')].map(t => t.tBodies[0].rows.length)")
        held_text = page.evaluate("document.querySelector('table.held').innerText")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = page.screenshot(tmp_path / "report.png")
    shutil.copy(shot, SCREENSHOTS / "report.png")
    assert page.messages == []
    assert charts == 8 and visible  # four per flaw measured on both sides
    assert tables >= 2 + 2 + 8 + 4  # summary, provenance, metrics, one per chart, profiles
    assert sections == ["time.sleep in an async handler", "Synchronous database driver"]
    assert "blocked" in summary and shot.stat().st_size > 20_000
    assert held == [3, 3]  # the page's "What held the loop" and the sync-db section's
    assert "app/db.py:30" in held_text and "AG106 at app/db.py:30" in held_text and "the garbage collector" in held_text


def test_your_own_apps_summary_gives_each_endpoint_its_own_verdict():
    """Without a manifest each endpoint is its own row: the one that blocks says so beside the healthy one, and a
    run whose lag was not measured says that."""
    blocked, healthy = run("app", "target", "/report", 40, 700.0, 250.0, 690.0), run("app", "target", "/ping", 900,
                                                                                        8.0, 2.0, 9.0)
    unmeasured = run("app", "target", "/elsewhere", 500, 9.0, 0.0, 9.0)
    unmeasured.lag = LagSummary(measured=False)
    results = BenchResults(make_results().provenance, {}, runs=[blocked, healthy, unmeasured])
    page = run_page(results)
    assert [(row["title"], row["loop"]) for row in page["summary"]] == [
        ("GET /report", "blocked"), ("GET /ping", "healthy"), ("GET /elsewhere", "not measured")]
    summary = render_run(results).split('<h2 id="summary">', 1)[1].split("</table>", 1)[0]
    assert "<th>Endpoint</th>" in summary and summary.count('<span class="bad">blocked</span>') == 1
    assert summary.count('<span class="good">healthy</span>') == 1 and "not measured" in summary


def test_each_endpoint_of_your_own_app_has_a_colour_of_its_own():
    from asyncguard.report.charts import line_style

    colours = [line_style("target", index)["color"] for index in range(3)]
    assert len(set(colours)) == 3 and line_style("flawed", 0)["color"] not in colours


def test_what_held_the_loop_names_the_finding_it_confirms_and_the_blocker_the_checker_missed():
    page = run_page(make_results())
    held = {row["site"]: row for row in page["held"]}
    assert held["app/db.py:30"]["finding"] == "AG106 at app/db.py:30" and held["app/db.py:30"]["share"] == "80%"
    assert held["app/slow.py:7"]["finding"] == "" and held["app/slow.py:7"]["route"] == "a background task or callback"
    collector = held["the garbage collector"]  # the runtime's: neither a finding nor a miss of the checker
    assert collector["collector"] and collector["share"] == "3%" and not held["app/slow.py:7"]["collector"]
    section = next(s for s in page["sections"] if s["id"] == "sync-db")
    assert [row["site"] for row in section["held"]] == ["app/db.py:30", "app/slow.py:7", "the garbage collector"]
    page_text = render_run(make_results())
    assert page_text.count("not found statically") == 2 and "the runtime's, not a call" in page_text
    assert section["not_exercised"] == []
    from asyncguard.report.view import held_text
    flawed = next(r for r in make_results().runs if r.flaw == "sync-db" and r.side == "flawed")
    assert held_text(flawed) == "stalled 75.0% of the time, longest 300 ms"
