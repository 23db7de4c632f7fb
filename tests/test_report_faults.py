"""Reports under bad input: a results file either renders, its odd values shown as text, or is refused in one line
(exit 2); links built from results only ever lead to files beside the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asyncguard.report.html import render_run
from asyncguard.report.view import relative_href
from sample_results import make_results
from test_report import cli, elements, saved


def edited(tmp_path: Path, edit) -> Path:
    """A real results.json written from the sample results, then changed by `edit` (its data → new data or text)."""
    path = saved(tmp_path, "run", make_results())
    changed = edit(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    return path


def setting(*keys_and_value):
    """An edit that sets data[k1][k2]... = value."""
    *keys, last, value = keys_and_value

    def edit(data):
        target = data
        for key in keys:
            target = target[key]
        target[last] = value
        return data
    return edit


def renamed(name: str):
    def edit(data):
        for run in data["runs"]:
            run["name"] = f"{run['name']} {name}"
        return data
    return edit


@pytest.mark.parametrize("edit,message", [
    pytest.param(lambda data: [data], "the document: Input should be a valid dictionary, found a list", id="list"),
    pytest.param(lambda data: "[" * 100_000 + "]" * 100_000, "nested too deeply", id="nested-lists"),
    pytest.param(setting("runs", 0, "lag", "samples", None), "runs.0.lag.samples: Input should be a valid integer, "
                 "found null", id="null-count"),
    pytest.param(setting("runs", 0, "rps", "fast"), 'runs.0.rps: Input should be a valid number, found "fast"',
                 id="string-number"),
    pytest.param(setting("runs", 1, "latency", "fast"), "runs.1.latency:", id="string-percentiles"),
    pytest.param(setting("runs", 0, "lag", "samples", 1.5), "runs.0.lag.samples:", id="float-count"),
    pytest.param(setting("runs", 0, "series", 2, "p99", True), "runs.0.series.2.p99:", id="bool-number"),
    pytest.param(setting("runs", 0, "error", 500), "runs.0.error:", id="number-string"),
    pytest.param(setting("runs", None), "runs: Input should be a valid array, found null", id="null-runs"),
    pytest.param(setting("scenario", None), "scenario: Input should be a valid dictionary, found null",
                 id="null-scenario"),
    pytest.param(setting("scenario", "load", None), "scenario.load:", id="null-load"),
    pytest.param(setting("scenario", "load", "rate", "fast"), "scenario.load.rate:", id="string-rate"),
    pytest.param(setting("scenario", "load", "bystander_interval", None), "scenario.load.bystander_interval:",
                 id="null-interval"),
    pytest.param(setting("provenance", "git", "commit", 12345), "provenance.git.commit:", id="number-commit"),
    pytest.param(setting("provenance", "git", None), "provenance.git:", id="null-git"),
    pytest.param(setting("runs", 0, "lag", "unknown", 1), "unexpected keyword argument 'unknown'", id="unknown-key"),
    pytest.param(setting("runs", 0, "lag", "expected_samples", 10 ** 400), "integer 1000000000000… is too large",
                 id="huge-integer"),
])
def test_results_that_cannot_be_rendered_are_one_line_and_exit_2(tmp_path, edit, message):
    path = edited(tmp_path, edit)
    process = cli("report", str(path))
    assert process.returncode == 2, process.stderr
    assert process.stderr.startswith(f"asyncguard: error: {path} is not an asyncguard results file: ")
    assert message in process.stderr
    assert "Traceback" not in process.stderr and process.stderr.count("\n") == 1
    assert not (path.parent / "index.html").exists()


def test_results_that_are_not_utf8_are_one_line_and_exit_2(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b"\xff\xfe{}")
    process = cli("report", str(path))
    assert process.returncode == 2 and "is not an asyncguard results file: 'utf-8' codec" in process.stderr
    assert "Traceback" not in process.stderr and process.stderr.count("\n") == 1


def rendered(tmp_path: Path, edit) -> str:
    """The page the command writes for the edited results: written, exit 0, nothing on stderr."""
    path = edited(tmp_path, edit)
    process = cli("report", str(path))
    assert process.returncode == 0 and process.stderr == "", process.stderr
    return (path.parent / "index.html").read_text()


def chart_texts(html: str) -> set[str]:
    """What the charts' <text> elements say (matplotlib keeps the source of each text in a comment too: not that)."""
    return {re.sub(r"<[^>]*>|\s*\n\s*", "", text) for text in re.findall(r"<text\b.*?</text>", html, flags=re.S)}


@pytest.mark.parametrize("name", [r"$\frac{a$", "$x^2$", "$5 or $6"])
def test_endpoint_names_with_dollars_are_drawn_literally_not_as_mathtext(tmp_path, name):
    html = rendered(tmp_path, renamed(name))
    assert html.count("<svg") == 8
    assert f"flawed: GET /flawed/sleep {name}" in chart_texts(html)  # the label as written, not typeset


def test_a_run_whose_name_starts_with_an_underscore_keeps_its_legend_entry():
    results = make_results()
    for run in results.runs:
        run.side, run.name = "target", f"_{run.name}"
    assert "_GET /flawed/sleep" in chart_texts(render_run(results))


@pytest.mark.parametrize("number,shown", [
    ("null", "nan"), ("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1.7e308", "169,999,999,999"), ("-1e200", "-999999999999"),
])
def test_numbers_no_chart_can_place_are_shown_as_text_and_left_off_the_chart(tmp_path, number, shown):
    def edit(data):
        data["runs"][0]["latency"]["p99"] = "ODD"
        for second in data["runs"][0]["series"]:
            second["rps"] = second["p99"] = second["lag_p99"] = "ODD"
        return json.dumps(data).replace('"ODD"', number)
    html = rendered(tmp_path, edit)
    assert html.count("<svg") == 8
    assert f"<td class=\"num\">{shown}" in html


@pytest.mark.parametrize("path", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "//evil.example/x", "/etc/passwd", "http://evil.example/x",
    "file:///etc/passwd", "C:/profile.html", "profiles/../../outside.html", "..", "", "a://[",
])
def test_a_link_that_is_not_a_relative_path_inside_the_run_is_dropped(path):
    assert relative_href(path) is None


@pytest.mark.parametrize("path,href", [
    ("profiles/sleep-flawed/profile.html", "profiles/sleep-flawed/profile.html"),
    ("profiles/run #1?/profile.html", "profiles/run%20%231%3F/profile.html"),
    ("profiles/a:b/profile.html", "profiles/a%3Ab/profile.html"),
    ("\\\\evil.example\\x", "%5C%5Cevil.example%5Cx"),
])
def test_a_relative_path_is_linked_percent_encoded(path, href):
    assert relative_href(path) == href


def hrefs(html: str) -> list[str]:
    return [attrs["href"] for tag, attrs in elements(html) if tag == "a" and "href" in attrs]


def test_a_profile_link_with_a_scheme_is_shown_as_text_not_linked(tmp_path):
    def edit(data):
        data["runs"][0]["profile"]["html"] = "javascript:alert(1)"
        data["runs"][0]["profile"]["speedscope"] = "data:text/html,<script>alert(1)</script>"
        data["runs"][1]["profile"]["html"] = "//evil.example/x"
        return data
    html = rendered(tmp_path, edit)
    links = hrefs(html)
    assert links and all(href.startswith("#") or href.startswith("profiles/") for href in links), links
    assert "javascript:alert(1)" in html and "//evil.example/x" in html  # shown, as text
    assert "profiles/sleep-fixed/profile.speedscope.json" in links  # the ordinary ones still linked


def test_a_run_directory_named_like_a_url_is_listed_but_not_linked(tmp_path):
    reports = tmp_path / "reports"
    saved(reports, "20261201-070000", make_results())
    odd = saved(reports, "javascript:alert(1)", make_results(started="2026-12-02T07:00:00+00:00"))
    assert cli("report", str(odd)).returncode == 0
    html = (reports / "index.html").read_text()
    assert hrefs(html) == ["20261201-070000/index.html"]
    assert "javascript:alert(1)" in html
