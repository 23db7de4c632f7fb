"""The knowledge builder: learn from libraries' own sources which of their calls block, and write it as data.

    python -m asyncguard.lint.knowledge.learn elasticsearch weaviate-client==3.26.7 --out DIR
    python -m asyncguard.lint.knowledge.learn --from asyncguard/lint/knowledge/learned/distributions.json

Releases come from PyPI into a cache (`--cache`, by default `~/.cache/asyncguard/learn`; offline, what is
cached is used), or from a directory of installed packages (`--site-packages`, what `check --python` uses). A
release is learned after the releases it requires, with what was learned of them, so a chain may run through
several libraries (`elasticsearch` → `elastic_transport` → `urllib3`). Each release is learned in a process of its
own with a time limit; one that fails is reported and skipped. Two releases of one distribution (major versions
whose APIs differ) are merged into one file. The output is deterministic: the same releases give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from asyncguard.generated import replace_section
from asyncguard.lint.knowledge.base import BlockingApi, PatternTable
from asyncguard.lint.knowledge.learned_data import INDEX
from asyncguard.lint.knowledge.pypi import FetchError, Sources, fetch, requirements

BACK_OFFS = ("time.sleep",)
TIME_LIMIT = 600
"""Seconds one release may take to learn."""
EXIT_OK, EXIT_SOME_SKIPPED, EXIT_ERROR = 0, 1, 2


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asyncguard" / "learn"


@dataclass
class Outcome:
    requirement: str
    seconds: float
    learned: dict | None
    problem: str | None


def learn_one(sources: Sources, out: Path, with_learned: list[Path]) -> dict:
    """Learn one release, in this process, with what was learned of others in `with_learned`."""
    from asyncguard.lint.knowledge.base import build_knowledge
    from asyncguard.lint.knowledge.learned_data import LearnedData
    from asyncguard.lint.knowledge.learner import Learner, import_names

    knowledge = build_knowledge()
    own = frozenset(import_names(sources.root))
    knowledge.learned = LearnedData(with_learned, without=own)
    # the curated spellings of its own names (`pandas.core.frame.DataFrame` as `pandas.DataFrame`) are for its
    # users: inside the library, its classes are where they are defined, with their bases
    knowledge.aliases = [(prefix, name) for prefix, name in knowledge.aliases if prefix.split(".", 1)[0] not in own]
    _weaken(knowledge.blocking)
    return Learner(sources, knowledge).learn().to_json()


def _weaken(table: PatternTable) -> None:
    """Inside a library, a sleep is mostly a retry's back-off and a lock or queue guards its own state: both weak,
    so that a chain to the I/O they surround is the one learned (one ending in a thread wait is not learned)."""
    def weakened(name: str, api):
        if isinstance(api, BlockingApi) and (api.category == "thread" or name in BACK_OFFS):
            return replace(api, weak=True)
        return api

    table.exact = {name: weakened(name, api) for name, api in table.exact.items()}
    table.by_root = {root: [(order, regex, weakened(regex.pattern, api)) for order, regex, api in entries]
                     for root, entries in table.by_root.items()}


_running: set[subprocess.Popen] = set()
"""The learning processes now running: an interrupted build stops them rather than wait for them."""


def _learn_in_process(sources: Sources, with_learned: list[Path], time_limit: float) -> tuple[dict | None, str | None]:
    command = [sys.executable, "-m", "asyncguard.lint.knowledge.learn", "--one", sources.distribution,
               sources.version, str(sources.root), *[f"--with={d}" for d in with_learned]]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        _running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=time_limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None, f"over the {time_limit:.0f} s limit"
        finally:
            _running.discard(process)
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"failed: {last[:200]}"
    return json.loads(stdout), None


@contextmanager
def _stopped_when_interrupted():
    """Left by an exception (Ctrl-C, SIGTERM), the learning processes are killed: the pool's threads, waiting on
    them, then end at once."""
    try:
        yield
    except BaseException:
        for process in list(_running):
            process.kill()
        raise


def merge(learned: list[dict]) -> dict:
    """One file for a distribution learned at several releases: what blocks in any of them blocks (the newest
    release's chain shown first), types from the newest."""
    learned = sorted(learned, key=lambda d: _version_key(d["version"]), reverse=True)
    merged = dict(learned[0])
    merged["version"] = ", ".join(d["version"] for d in reversed(learned))
    for key in ("blocking", "aliases", "returns", "attributes"):
        combined: dict = {}
        for data in learned:
            for name, value in data[key].items():
                combined.setdefault(name, value)
        merged[key] = dict(sorted(combined.items()))
    merged["modules"] = sorted({m for d in learned for m in d["modules"]})
    merged["classes"] = sorted({c for d in learned for c in d.get("classes", ())})
    for key in ("examined", "coroutines", "errors"):
        merged[key] = sum(d[key] for d in learned)
    return merged


def prune(learned: dict) -> dict:
    """Only what can lead a checked call to a blocking one: the types of results and attributes on the way to a
    class with a blocking method, the public spellings of those, and each such class's async counterpart; a
    library's thousands of other classes and names say nothing a finding needs. A constructor whose chain ends in
    file I/O is left out: it opens a path only when given one (`PdfWriter()` vs `PdfWriter("out.pdf")`), or reads
    its configuration once, where clients are made, at import."""
    classes = set(learned["classes"])
    blocking = {name: call for name, call in learned["blocking"].items()
                if not (name in classes and call["category"] == "file")}
    useful = {name.rpartition(".")[0] for name in blocking}  # classes (and modules) with something that blocks
    kept: dict[str, dict] = {"returns": {}, "attributes": {}}
    while True:
        grown = False
        for table in kept:
            for name, type_ in learned[table].items():
                if type_ in useful and name not in kept[table]:
                    kept[table][name] = type_
                    grown |= name.rpartition(".")[0] not in useful
                    useful.add(name.rpartition(".")[0])
        if not grown:
            break
    wanted = set(blocking) | useful | set(kept["returns"])
    pruned = {key: value for key, value in learned.items() if key != "classes"}
    pruned.update(kept, blocking=blocking, aliases={alias: target for alias, target in learned["aliases"].items() if target in wanted},
                  counterparts={owner: found for owner in sorted(useful & classes)
                                if (found := async_counterpart(owner, classes, learned["aliases"]))})
    return pruned


def async_counterpart(class_path: str, classes: set[str], aliases: dict[str, str]) -> str | None:
    """`AsyncElasticsearch` for `Elasticsearch`: the same library's async class of that name, if it has one."""
    module, _, name = class_path.rpartition(".")
    for candidate in (f"Async{name}", f"{name}Async"):
        for path in (f"{module}.{candidate}", f"{module.split('.', 1)[0]}.{candidate}"):
            if path in classes or path in aliases:
                return candidate
    return None


def write_learned(out: Path, learned: dict) -> None:
    """One entry a line, keys sorted: small, and reviewable as a diff."""
    lines = [json.dumps({key: value for key, value in learned.items()
                         if key not in ("blocking", "aliases", "returns", "attributes", "counterparts")},
                        sort_keys=True)[:-1] + ","]
    for table in ("aliases", "attributes", "blocking", "counterparts", "returns"):
        entries = [f"  {json.dumps(name)}: {json.dumps(value, sort_keys=True)}"
                   for name, value in sorted(learned[table].items())]
        lines.append(f' "{table}": {{' + ("\n" + ",\n".join(entries) + "\n " if entries else "") + "},")
    lines[-1] = lines[-1].rstrip(",")
    (out / file_name(learned["distribution"])).write_text("\n".join(lines) + "\n}\n", encoding="utf-8")


def _version_key(version: str) -> tuple:
    try:
        return (Version(version),)
    except InvalidVersion:
        return (Version("0"),)


def write_index(out: Path) -> None:
    """`index.json`: import name → file, the releases each file was learned from, and a digest of every file
    (part of the findings cache's key)."""
    modules, versions, digest = {}, {}, hashlib.blake2b(digest_size=16)
    for path in sorted(out.glob("*.json")):
        if path.name in (INDEX, DISTRIBUTIONS):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        digest.update(path.read_bytes())
        versions[data["distribution"]] = data["version"].split(", ")
        for module in data["modules"]:
            modules[module] = path.name
    index = {"modules": dict(sorted(modules.items())), "versions": versions, "digest": digest.hexdigest()}
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


DISTRIBUTIONS = "distributions.json"
"""The evidence for what is learned (`asyncguard.lint.measure.popular`); not a learned file."""


def file_name(distribution: str) -> str:
    return f"{distribution}.json"


def order(releases: list[Sources]) -> list[list[Sources]]:
    """Levels of releases: each after the distributions it requires (a cycle is broken where it closes)."""
    names = {r.distribution for r in releases}
    needs = {r.distribution: set(requirements(r.root)) & names - {r.distribution} for r in releases}
    levels, done = [], set()
    remaining = list(releases)
    while remaining:
        ready = [r for r in remaining if needs[r.distribution] <= done] or remaining[:1]
        levels.append(ready)
        done |= {r.distribution for r in ready}
        remaining = [r for r in remaining if r.distribution not in done]
    return levels


def build(requirement_list: list[str], out: Path, cache: Path, jobs: int, time_limit: float,
          with_learned: list[Path], quiet: bool = False, requirement_depth: int = 0) -> list[Outcome]:
    """Fetch the releases, and down to `requirement_depth` levels what they require (so that a chain can run into
    a library no service names itself: `elasticsearch` → `elastic_transport`), then learn them all."""
    outcomes: list[Outcome] = []
    releases: list[Sources] = []
    wanted, seen = list(requirement_list), set()
    for depth in range(requirement_depth + 1):
        found = []
        for requirement in wanted:
            try:
                found.append(fetch(requirement, cache))
            except FetchError as error:
                outcomes.append(Outcome(requirement, 0.0, None, str(error)))
                if not quiet:
                    print(_progress_line(outcomes[-1]), file=sys.stderr)
        releases += found
        seen |= {canonical_name(requirement) for requirement in wanted}
        wanted = sorted({name for sources in found for name in requirements(sources.root)} - seen)
    return outcomes + build_sources(releases, out, jobs, time_limit, with_learned, quiet)


def canonical_name(requirement: str) -> str:
    return canonicalize_name(requirement.partition("==")[0].strip())


def build_sources(releases: list[Sources], out: Path, jobs: int, time_limit: float, with_learned: list[Path],
                  quiet: bool = False) -> list[Outcome]:
    """Learn each release after those it requires, each in a process of its own, into `out`; what `out` already
    holds of other distributions is kept."""
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    by_distribution: dict[str, list[dict]] = {}
    for level in order(releases):
        def run(sources: Sources) -> Outcome:
            started = time.perf_counter()
            learned, problem = _learn_in_process(sources, [*with_learned, out], time_limit)
            return Outcome(f"{sources.distribution}=={sources.version}", time.perf_counter() - started, learned,
                           problem)

        with ThreadPoolExecutor(max_workers=jobs) as pool, _stopped_when_interrupted():
            learned_now = []
            for outcome in pool.map(run, level):
                outcomes.append(outcome)
                if not quiet:
                    print(_progress_line(outcome), file=sys.stderr)
                if outcome.learned is not None:
                    learned_now.append(outcome.learned)
        # written once the level is done: every release of a level learns with the same files, whatever the order
        for data in learned_now:
            by_distribution.setdefault(data["distribution"], []).append(data)
        for distribution in {data["distribution"] for data in learned_now}:
            write_learned(out, prune(merge(by_distribution[distribution])))
        write_index(out)
    return outcomes


def _progress_line(outcome: Outcome) -> str:
    if outcome.learned is None:
        return f"asyncguard learn: skipped {outcome.requirement}: {outcome.problem}"
    data = outcome.learned
    return (f"{data['distribution']} {data['version']}: {len(data['blocking'])} of {data['examined']} public calls "
            f"block ({outcome.seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncguard.lint.knowledge.learn",
                                     description="Learn which calls of libraries block, from their own sources.")
    parser.add_argument("requirements", nargs="*", help="`name` or `name==version`")
    parser.add_argument("--from", dest="from_file", type=Path,
                        help="a distributions.json (`asyncguard.lint.measure.popular`): its `learned` list")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("learned"))
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("-j", "--jobs", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    parser.add_argument("--depth", dest="requirement_depth", type=int, default=2,
                        help="also learn what the releases require, this many levels down (default 2)")
    parser.add_argument("--with", dest="with_learned", action="append", type=Path, default=[],
                        help="another directory of learned files to learn with")
    parser.add_argument("--report", type=Path, help="write the run's outcomes (per release) as JSON")
    parser.add_argument("--readme", type=Path, help="put the coverage table of the run in this README")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("DISTRIBUTION", "VERSION", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        distribution, version, root = args.one
        print(json.dumps(learn_one(Sources(distribution, version, Path(root)), args.out, args.with_learned)))
        return EXIT_OK
    wanted = list(args.requirements)
    if args.from_file is not None:
        try:
            listed = json.loads(args.from_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            print(f"asyncguard learn: error: cannot read {args.from_file}: {error}", file=sys.stderr)
            return EXIT_ERROR
        wanted += listed.get("learned", [])
    if not wanted:
        parser.error("name at least one distribution, or --from FILE")
    started = time.perf_counter()
    outcomes = build(wanted, args.out, args.cache, max(1, args.jobs), args.time_limit, args.with_learned,
                     args.quiet, args.requirement_depth)
    report = {"seconds": round(time.perf_counter() - started, 1), "jobs": max(1, args.jobs),
              "releases": [{**outcome.__dict__, "seconds": round(outcome.seconds, 1),
                            "learned": _summary(outcome.learned)} for outcome in outcomes]}
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.readme is not None:
        replace_section(args.readme, COVERAGE_START, COVERAGE_END, coverage_table(report, args.out))
    skipped = [outcome for outcome in outcomes if outcome.learned is None]
    if not args.quiet:
        print(f"asyncguard learn: {len(outcomes) - len(skipped)} learned, {len(skipped)} skipped", file=sys.stderr)
    return EXIT_SOME_SKIPPED if skipped else EXIT_OK


COVERAGE_START = "<!-- knowledge:start (generated by `make knowledge`, do not edit) -->"
COVERAGE_END = "<!-- knowledge:end -->"


def coverage_table(report: dict, out: Path) -> str:
    """What the learned files hold, per distribution (after `prune`), with the build's time: totals first, the
    distributions in a fold."""
    seconds: dict[str, float] = {}
    for release in report["releases"]:
        if release["learned"] is not None:
            name = release["learned"]["distribution"]
            seconds[name] = seconds.get(name, 0.0) + release["seconds"]
    files = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(out.glob("*.json"))
             if path.name not in (INDEX, DISTRIBUTIONS)]
    skipped = [r for r in report["releases"] if r["learned"] is None]
    examined = sum(data["examined"] for data in files)
    blocking = sum(len(data["blocking"]) for data in files)
    rows = [f"{len(files)} distributions learned ({sum(len(d['version'].split(', ')) for d in files)} releases), "
            f"{len(skipped)} releases skipped; {examined:,} public calls examined, {blocking:,} learned as blocking; "
            f"{report['seconds'] / 60:.1f} minutes with {report['jobs']} processes.", "",
            "<details><summary>Per distribution</summary>", "",
            "| Distribution | Releases | Public calls | Blocking | Coroutines | Seconds |",
            "|---|---|---:|---:|---:|---:|"]
    for data in sorted(files, key=lambda d: (-len(d["blocking"]), d["distribution"])):
        rows.append(f"| {data['distribution']} | {data['version']} | {data['examined']:,} | {len(data['blocking']):,} "
                    f"| {data['coroutines']:,} | {seconds.get(data['distribution'], 0.0):.1f} |")
    rows += ["", "Skipped: " + "; ".join(f"{r['requirement']} ({r['problem']})" for r in skipped) + ".", "",
             "</details>"]
    return "\n".join([COVERAGE_START, *rows, COVERAGE_END])


def _summary(learned: dict | None) -> dict | None:
    if learned is None:
        return None
    return {"distribution": learned["distribution"], "version": learned["version"],
            "blocking": len(learned["blocking"]), "examined": learned["examined"],
            "coroutines": learned["coroutines"], "errors": learned["errors"]}


if __name__ == "__main__":
    sys.exit(main())
