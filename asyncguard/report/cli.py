"""`asyncguard report RESULTS... [--out DIR]`: one results file → its page; two or more → a comparison page.

Exit status: 0 written; 2 usage error (a results file that cannot be read, an output that cannot be written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asyncguard.bench.results import BenchResults

RESULTS_FILE = "results.json"


class ReportError(Exception):
    """Reported in one line, exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                        help="results.json files (or the run directories holding them); with two or more, the "
                             "first is the baseline of a comparison")
    parser.add_argument("--out", type=Path, help="directory to write to (default: the directory of the (last) "
                                                 "results file)")


def load(path: Path) -> tuple[Path, BenchResults]:
    """A results file every page can render, or a ReportError saying why not."""
    from asyncguard.report.loader import read_results

    path = path / RESULTS_FILE if path.is_dir() else path
    try:
        return path, read_results(path)
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ReportError(f"{path} is not an asyncguard results file: {error}") from None


def write_run_report(results: BenchResults, out: Path) -> Path:
    """The run's page beside its results, and the list of runs when the run sits in a `reports/` directory."""
    from asyncguard.report.html import RUN_PAGE, render_run, write_files

    page = write_files(out, {RUN_PAGE: render_run(results)})[0]
    update_runs_index(out.parent)
    return page


def update_runs_index(base: Path) -> Path | None:
    """`reports/index.html`: every run under `base`, for a `base` named reports (never a stray directory)."""
    from asyncguard.report.html import runs_index, write_files

    if base.name != "reports":
        return None
    runs = []
    for path in sorted(base.glob(f"*/{RESULTS_FILE}")):
        try:
            runs.append(load(path))
        except ReportError:
            continue  # a foreign or half-written file is not a run to list
    return write_files(base, {"index.html": runs_index(base, runs)})[0]


def run_report(args: argparse.Namespace) -> int:
    from asyncguard.report.html import render_comparison, write_files

    try:
        loaded = [load(path) for path in args.results]
        if len(loaded) == 1:
            path, results = loaded[0]
            page = write_run_report(results, args.out or path.parent)
        else:
            labels = unique_labels([path for path, _ in loaded])
            out = args.out or loaded[-1][0].parent
            page = write_files(out, {"compare.html": render_comparison(
                [(label, results) for label, (_, results) in zip(labels, loaded)])})[0]
    except ReportError as error:
        print(f"asyncguard: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"asyncguard: error: cannot write the report: {error}", file=sys.stderr)
        return 2
    print(f"report: {page}")
    return 0


def unique_labels(paths: list[Path]) -> list[str]:
    """Each run named by its directory (`20261201-070412`), or by its whole path where two share a name."""
    names = [path.parent.name or str(path) for path in paths]
    return [name if names.count(name) == 1 else str(path) for name, path in zip(names, paths)]
