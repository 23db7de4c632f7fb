"""Scoring the checker against labels written blind: recall on the labelled blocking sites, and which findings hit a
labelled negative or no label at all (those need a reader's verdict before they count either way).

    python -m asyncguard.lint.measure.accuracy LABELS.json... --checkouts DIR [--out scores.json] [--tool hydroid]
                                                               [--venvs DIR]

Each labels file (the protocol: a service's `repo`, `commit`, `sites` and `negatives`, written by reading the code
before the checker ran on it) names a repository; its checkout is `DIR/<owner>+<name>` at that commit. The checker
runs on the whole checkout with no cache, as a user's CI would, and nothing of the service is installed. With
`--venvs DIR`, the service's dependencies are: `DIR/<owner>+<name>` is a venv where they are installed, given to
the tool as `--python`. With `--tool hydroid`, hydroid-cli (the `lintbench` extra) is scored on the same labels
instead (with `--follow-libs` when it is given a venv).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asyncguard.lint.findings import NOTICES

LINE_SLACK = 1
"""A finding on the line before or after a label's line is the same call (a call written over two lines)."""


@dataclass
class ServiceScore:
    repo: str
    commit: str
    sites: int
    sure_sites: int
    found: int
    found_sure: int
    findings: int
    on_negatives: int
    unlabelled: int
    exit_status: int
    missed: list[dict] = field(default_factory=list)
    """Each label no finding matched, as written."""
    false_on_negatives: list[dict] = field(default_factory=list)
    """Findings on a labelled negative: false positives."""
    unjudged: list[dict] = field(default_factory=list)
    """Findings no label speaks of: a reader's verdict decides."""
    matched: list[dict] = field(default_factory=list)
    """Findings on a labelled site (true by the label), so a precision sample can be drawn from every finding."""
    notices: list[dict] = field(default_factory=list)
    """Files the tool says it could not check (AG001) or failed on (AG002): no claim that anything blocks, so
    neither in `findings` nor in precision."""


def near(finding: dict, label: dict) -> bool:
    return finding["path"] == label["path"] and abs(finding["line"] - label["line"]) <= LINE_SLACK


def score(labels: dict, findings: list[dict], exit_status: int) -> ServiceScore:
    """Match findings to labels one to one: every finding on a label's own line first, then the rest to a label a
    line away (so a finding never goes to a neighbour while its own line's label waits)."""
    sites, negatives = labels["sites"], labels.get("negatives", [])
    notices = [f for f in findings if f["code"] in NOTICES]
    findings = [f for f in findings if f["code"] not in NOTICES]
    unmatched = list(findings)
    found, matched = [], []
    for slack in range(LINE_SLACK + 1):
        for site in sorted(sites, key=lambda site: (site["path"], site["line"])):
            candidates = [f for f in unmatched if f["path"] == site["path"] and abs(f["line"] - site["line"]) == slack]
            if site not in found and candidates:
                unmatched.remove(candidates[0])
                found.append(site)
                matched.append(candidates[0])
    on_negatives = [f for f in unmatched if any(near(f, negative) for negative in negatives)]
    unjudged = [f for f in unmatched if f not in on_negatives]
    shown = lambda f: {key: f[key] for key in ("path", "line", "code", "message")}  # noqa: E731
    return ServiceScore(
        repo=labels["repo"], commit=labels["commit"], sites=len(sites),
        sure_sites=sum(site.get("confidence") == "sure" for site in sites),
        found=len(found), found_sure=sum(site.get("confidence") == "sure" for site in found),
        findings=len(findings), on_negatives=len(on_negatives), unlabelled=len(unjudged), exit_status=exit_status,
        missed=[site for site in sites if site not in found],
        false_on_negatives=[shown(f) for f in on_negatives], unjudged=[shown(f) for f in unjudged],
        matched=[shown(f) for f in matched], notices=[shown(f) for f in notices])


def check(checkout: Path, tool: str = "asyncguard", venv: Path | None = None) -> tuple[list[dict], int]:
    """The tool's findings on the checkout (`path`, `line`, `code`, `message`), paths relative to it; with the
    service's dependencies installed in `venv` when it is given."""
    python = str(venv / "bin" / "python") if venv is not None else ""
    if tool == "hydroid":
        command = [str(Path(sys.executable).with_name("hydroid")), ".", "--format", "json", "--no-cache"]
        command += ["--python", python, "--follow-libs"] if venv is not None else []
    else:
        command = [sys.executable, "-m", "asyncguard", "check", "--no-cache", "--format", "json", "--python", python,
                   "."]
    process = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    try:
        if tool == "hydroid":
            return [{"path": d["location"]["path"], "line": d["location"]["line"], "code": "hydroid",
                     "message": d["sink"] if isinstance(d.get("sink"), str) else json.dumps(d.get("sink"))}
                    for d in json.loads(process.stdout)["diagnostics"]], process.returncode
        return json.loads(process.stdout)["findings"], process.returncode
    except (ValueError, KeyError, TypeError):
        raise SystemExit(f"asyncguard: error: no JSON from the check of {checkout} (exit {process.returncode}): "
                         f"{process.stderr.strip()[-300:]}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncguard.lint.measure.accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("labels", nargs="+", type=Path)
    parser.add_argument("--checkouts", type=Path, required=True, help="where <owner>+<name> checkouts are")
    parser.add_argument("--out", type=Path, help="write every score, with misses and findings, as JSON")
    parser.add_argument("--tool", choices=["asyncguard", "hydroid"], default="asyncguard", help="the checker scored")
    parser.add_argument("--venvs", type=Path, help="where <owner>+<name> venvs with the services' dependencies are")
    args = parser.parse_args(argv)
    scores = []
    print("| service | sites (sure) | found (sure) | findings | on negatives | unlabelled |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in args.labels:
        labels = json.loads(path.read_text(encoding="utf-8"))
        name = labels["repo"].replace("/", "+")
        venv = args.venvs / name if args.venvs is not None and (args.venvs / name).is_dir() else None
        findings, status = check(args.checkouts / name, args.tool, venv)
        result = score(labels, findings, status)
        scores.append(result)
        print(f"| {result.repo} | {result.sites} ({result.sure_sites}) | {result.found} ({result.found_sure}) | "
              f"{result.findings} | {result.on_negatives} | {result.unlabelled} |")
    sites, found = sum(s.sites for s in scores), sum(s.found for s in scores)
    print(f"\nrecall {found}/{sites} = {found / max(sites, 1):.2f}; findings on labelled negatives: "
          f"{sum(s.on_negatives for s in scores)}; unlabelled findings to judge: {sum(s.unlabelled for s in scores)}; "
          f"files not checked or failed on (AG001/AG002, not findings): {sum(len(s.notices) for s in scores)}")
    if args.out:
        args.out.write_text(json.dumps([asdict(s) for s in scores], indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
