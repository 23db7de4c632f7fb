"""Pages as pure functions (plain data in, HTML text out), and the one place that writes them to disk."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Mapping

from asyncguard.atomic import write_atomically

from asyncguard.bench.results import BenchResults, StaticFinding

RUN_PAGE = "index.html"


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("asyncguard.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["code"] = inline_code
    return env


def inline_code(text: str):
    """`name` spans as <code>, everything escaped: the manifest's and the rules' texts are written that way."""
    from markupsafe import Markup, escape

    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: no spans, just the text
        return escape(text)
    return Markup("").join(Markup("<code>%s</code>") % part if index % 2 else escape(part)
                           for index, part in enumerate(parts))


def render(template: str, page: dict) -> str:
    return environment().get_template(template).render(page=page)


def render_run(results: BenchResults) -> str:
    from asyncguard.report.view import run_page

    return render("run.html.j2", run_page(results))


def render_lint(findings: list[StaticFinding], files_checked: int) -> str:
    from asyncguard.report.view import lint_page

    return render("lint.html.j2", lint_page(findings, files_checked))


def render_comparison(runs: list[tuple[str, BenchResults]]) -> str:
    from asyncguard.report.compare import comparison_page

    return render("compare.html.j2", comparison_page(runs))


def write_files(out: Path, files: Mapping[str, str]) -> list[Path]:
    """Each page atomically (a reader never sees half a page); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        write_atomically(out / name, text)
        written.append(out / name)
    return written


def runs_index(base: Path, runs: list[tuple[Path, BenchResults]]) -> str:
    """The list of runs under `base` (each a directory with results.json and its page), newest first."""
    from asyncguard.report.view import link

    entries = []
    for path, results in sorted(runs, key=lambda item: item[1].provenance.started, reverse=True):
        directory = path.parent
        entries.append({
            "name": directory.name, "page": link(f"{directory.relative_to(base).as_posix()}/{RUN_PAGE}"),
            "started": results.provenance.started, "commit": (results.provenance.git.get("commit") or "?")[:12],
            "endpoints": len(results.runs), "blocked": sum(1 for r in results.runs if not r.error and r.blocked),
            "errors": sum(1 for r in results.runs if r.error), "complete": "yes" if results.complete else "no",
        })
    return render("index.html.j2", {"title": "asyncguard reports", "runs": entries})
