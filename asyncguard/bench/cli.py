"""`asyncguard bench`: load-test and profile an app, or the whole sample suite, and write the results.

Exit status: 0 measured; 1 a run failed (could not be measured: validation failed, the server crashed; or its
requests failed beyond `--max-failures`, or none succeeded), or the results could not be saved; 2 usage error
(an `--out` that cannot be written included, found before measuring); 3 a `--fail-if` limit was crossed; 128 + the
signal's number when SIGINT (130), SIGTERM (143) or SIGHUP (129) interrupted it (what was measured is saved).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_REGRESSION = 0, 1, 2, 3
DEFAULTS = {"users": 32, "rate": None, "warmup": 2.0, "duration": 6.0}
LOAD_LIMITS = {"users": (1, 10_000, True), "rate": (0, 1_000_000, False), "warmup": (0, 3_600, True),
               "duration": (0, 86_400, False)}
"""Lowest and highest value of each load setting, and whether the lowest itself is allowed."""
MAX_WORKERS = 64
PROBE_BYTES = 64 * 1024
"""Written and removed in `--out` before anything is measured: a read-only or full file system is found then."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", nargs="?", help="ASGI app to measure, as module:attribute (e.g. myservice.main:app)")
    parser.add_argument("--scenario", type=Path, metavar="FILE",
                        help="a TOML scenario: app, weighted endpoints, load (see asyncguard/bench/scenario.py)")
    parser.add_argument("--url", metavar="http://127.0.0.1:PORT",
                        help="measure a server you already run (on this machine only): none is started, nothing "
                             "is profiled")
    parser.add_argument("--lag-file", type=Path, metavar="FILE",
                        help="with --url: the file the server's asyncguard.bench.lag.measured wrapper writes its loop "
                             "lag to (start the server with ASYNCGUARD_LAG_FILE=FILE); without it the lag is not "
                             "measured")
    parser.add_argument("-f", "--locustfile", type=Path, metavar="FILE",
                        help="your own Locust users (multi-step flows, their own waits) as the load on APP or --url; "
                             "a run for each request name they use")
    parser.add_argument("--discover", action="store_true",
                        help="measure the operations APP's OpenAPI schema can call: GETs without required "
                             "parameters, others with examples (what is skipped is said)")
    parser.add_argument("--openapi", default="/openapi.json", metavar="PATH",
                        help="with --discover: where the app serves its schema (default /openapi.json)")
    parser.add_argument("--print-scenario", action="store_true",
                        help="with --discover: write the endpoints as a scenario file on stdout instead of measuring")
    parser.add_argument("--suite", metavar="DIR", help="measure every flaw of a sample-apps directory "
                                                       "(its manifest.toml), flawed then fixed")
    parser.add_argument("--endpoint", action=EndpointAction, default=[], metavar='"METHOD /path"',
                        help="endpoint of APP to load, each measured on its own (repeatable; default: GET /); "
                             "its query goes in the path (\"GET /items?limit=10\")")
    parser.add_argument("--json", action=BodyAction, metavar="JSON",
                        help="a JSON body for the --endpoint before it (sent as application/json)")
    parser.add_argument("--data", action=BodyAction, metavar="TEXT",
                        help="a body for the --endpoint before it, sent as --content-type (default "
                             "application/octet-stream); @FILE reads it from a file")
    parser.add_argument("--content-type", action=BodyAction, metavar="TYPE", help="the type of --data's body")
    parser.add_argument("-H", "--header", action="append", default=[], metavar='"Name: value"',
                        help="a header sent with every endpoint's requests (repeatable), e.g. an Authorization")
    parser.add_argument("--app-dir", help="directory to import APP from")
    parser.add_argument("--health", default=None, help="path answered when APP is ready (default: the endpoint)")
    parser.add_argument("--bystander", metavar='"METHOD /path"',
                        help="a cheap request timed 20 times a second alongside the load: what other clients wait "
                             "while the loop is blocked (suite default: the manifest's, GET /health)")
    parser.add_argument("--users", type=int, help=f"concurrent users (default {DEFAULTS['users']})")
    parser.add_argument("--rate", type=float, help="constant arrival rate in requests/s instead of a closed loop")
    parser.add_argument("--duration", type=float,
                        help=f"measured seconds per endpoint (default {DEFAULTS['duration']:g})")
    parser.add_argument("--warmup", type=float, help=f"warm-up seconds, excluded (default {DEFAULTS['warmup']:g})")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="a request unanswered after this long fails as a timeout (default 30)")
    parser.add_argument("--max-failures", type=float, default=1.0, metavar="PERCENT",
                        help="share of a run's requests that may fail (wrong status, error, timeout) before the "
                             "run is failed (default 1)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                        help="a separate pyinstrument pass per endpoint (default on)")
    parser.add_argument("--workers", type=int, default=0,
                        help="run Locust as a master with N local worker processes (default: one process)")
    parser.add_argument("--first-fix-only", action="store_true", help="suite: measure only each flaw's first fix")
    parser.add_argument("--only", help="suite: comma-separated flaw ids to measure")
    parser.add_argument("--out", type=Path, help="output directory (default reports/<timestamp>): new, empty, or "
                                                 "an earlier run's")
    parser.add_argument("--force", action="store_true", help="write into an --out that holds other files")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="compare with an earlier results.json")
    parser.add_argument("--fail-if", action="append", default=[], metavar="COND",
                        help='a change from --compare\'s run, "p99>+20%%" or "rps<-10%%", or a limit: "p99>250ms", '
                             '"errors>1%%", "rps<100" (repeatable)')
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary table")


class EndpointAction(argparse.Action):
    """`--endpoint SPEC` starts a request; the `--json`/`--data`/`--content-type` after it describe its body."""

    def __call__(self, parser, namespace, value, option_string=None):
        getattr(namespace, self.dest).append({"spec": value})


class BodyAction(argparse.Action):
    """Sets the body of the last `--endpoint`; a misplaced one is kept in `request_problem`, said as usage errors
    are (one line, exit 2)."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not namespace.endpoint:
            namespace.request_problem = f"{option_string} describes the body of the --endpoint before it; give " \
                                        "that first"
            return
        request = namespace.endpoint[-1]
        if self.dest in request or {"json", "data"} <= {self.dest, *request}:
            namespace.request_problem = f"{option_string} given twice for --endpoint {request['spec']!r} (or with " \
                                        "both --json and --data)"
        request[self.dest] = value


def run_bench(args: argparse.Namespace) -> int:
    """SIGTERM and SIGHUP end the run as Ctrl-C does: with every server stopped and what was measured saved."""
    from asyncguard.lifetime import Interrupted, handle_signals

    with handle_signals():
        try:
            return prepare_and_measure(args)
        except Interrupted as interruption:
            print(f"asyncguard: interrupted ({interruption.name})", file=sys.stderr)
            return interruption.exit_status


def prepare_and_measure(args: argparse.Namespace) -> int:
    from asyncguard.bench.compare import GateError, parse_condition
    from asyncguard.bench.harness import (
        LoadSettings,
        Target,
        provenance,
        scenario_dict,
        suite_targets,
    )
    from asyncguard.bench.manifest import Endpoint, Expectation, load_manifest
    from asyncguard.bench.evidence import app_directory, static_findings
    from asyncguard.bench.results import BenchResults, FlawInfo
    from asyncguard.bench.server import Server, loopback_url
    from asyncguard.report.loader import read_results

    if getattr(args, "request_problem", None):
        return usage(args.request_problem)
    if (args.print_scenario or args.openapi != "/openapi.json") and not args.discover:
        return usage("--print-scenario and --openapi go with --discover")
    if args.locustfile is not None:
        if args.endpoint or args.discover or args.rate is not None or not (args.app or args.url):
            return usage("-f/--locustfile is the load on an APP or --url by itself: no --endpoint, --discover or "
                         "--rate (its users pace themselves)")
        if not args.locustfile.is_file():
            return usage(f"-f {args.locustfile}: no such file")
    if args.discover and (args.endpoint or not (args.app or args.url)):
        return usage("--discover reads the endpoints of an APP or --url from its schema; give no --endpoint")
    if sum(map(bool, (args.app, args.url, args.suite, args.scenario))) != 1:
        return usage("give one of: an APP to measure, --url of a server you run, --suite DIR, --scenario FILE")
    if args.lag_file is not None and not args.url and not args.scenario:
        return usage("--lag-file goes with --url (a server you run)")
    scenario = None
    if args.scenario:
        from asyncguard.bench.scenario import ScenarioError, load_scenario

        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as error:
            return usage(str(error))
    load = {**DEFAULTS, **(scenario.load if scenario else {}),
            **{key: getattr(args, key) for key in DEFAULTS if getattr(args, key) is not None}}
    problem = load_problem(load) or options_problem(args)
    if problem:
        return usage(problem)
    try:
        conditions = [parse_condition(text) for text in args.fail_if]
        old = read_results(args.compare) if args.compare else None  # checked as a report checks it
    except GateError as error:
        return usage(str(error))
    except OSError as error:
        return usage(f"cannot read {args.compare}: {error.strerror or error}")
    except ValueError as error:
        return usage(f"{args.compare} is not an asyncguard results file: {error}")
    if old is None and any(condition.relative for condition in conditions):
        return usage("--fail-if with a change (+N% or -N%) needs --compare OLD.json")

    settings = LoadSettings(users=int(load["users"]), rate=load["rate"], warmup=float(load["warmup"]),
                            duration=float(load["duration"]), profile=args.profile, workers=args.workers,
                            timeout=args.timeout, max_failures=args.max_failures / 100,
                            lag_file=args.lag_file or (scenario.lag_file if scenario else None))
    out = args.out or Path("reports") / datetime.now().strftime("%Y%m%d-%H%M%S")
    problem = out_problem(out, args.force)
    if problem:
        return usage(problem)
    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    upstream = None
    if args.suite:
        manifest_path = Path(args.suite) / "manifest.toml"
        if not manifest_path.is_file():
            return usage(f"no manifest.toml in {args.suite}")
        manifest = load_manifest(manifest_path)
        targets = suite_targets(manifest, first_fix_only=args.first_fix_only)
        if args.only:
            wanted = set(args.only.split(","))
            unknown = wanted - {flaw.id for flaw in manifest.flaws}
            if unknown:
                return usage(f"no flaw {', '.join(sorted(unknown))} in {manifest_path}")
            targets = [t for t in targets if t.flaw in wanted]
        upstream = Server(manifest.upstream, app_dir=manifest_path.parent, health_path="/health")
        groups = [[target] for target in targets]
    elif scenario is not None:
        targets = list(scenario.targets)
        groups = [targets]
    else:
        try:
            headers = parse_headers(args.header)
            endpoints = [with_body(parse_endpoint(request["spec"], "--endpoint", headers), request)
                         for request in args.endpoint or [{"spec": "GET /"}]]
            url = loopback_url(args.url) if args.url else None
        except ValueError as error:
            return usage(str(error))
        if args.discover:
            try:
                endpoints = discover_endpoints(args, url, headers, say)
            except DiscoveryError as error:
                print(f"asyncguard: error: {error}", file=sys.stderr)
                return error.status
            if endpoints is None:  # --print-scenario: written, nothing to measure
                return EXIT_OK
        if args.locustfile is not None:  # one load: its users choose the requests
            endpoints = [Endpoint("LOCUSTFILE", args.locustfile.name)]
        targets = [Target("app", "target", args.app or url, e, Expectation(),
                          Path(args.app_dir) if args.app_dir else None,
                          health_path=args.health or ("/" if args.locustfile else e.path), url=url,
                          locustfile=args.locustfile)
                   for e in endpoints]
        groups = [[target] for target in targets]
    if args.bystander:
        try:
            bystander = parse_endpoint(args.bystander, "--bystander")
        except ValueError as error:
            return usage(str(error))
        groups = [[replace(target, bystander=bystander) for target in group] for group in groups]
        targets = [target for group in groups for target in group]

    results = BenchResults(provenance(sys.argv), scenario_dict(settings, targets))
    if args.suite:
        results.flaws = [FlawInfo(f.id, f.title, f.why, f.fix, f.note, [[x.code, x.context] for x in f.findings])
                         for f in manifest.flaws if f.id in {t.flaw for t in targets}]
    code_dir = app_directory(targets[0].app, targets[0].app_dir) if targets[0].url is None or targets[0].app_dir \
        else None
    if code_dir is not None:
        say(f"asyncguard check {code_dir}")
        results.findings = static_findings(code_dir)
    with live_status(enabled=not args.quiet) as status:
        return measure_and_report(settings, groups, results, out, upstream, old, conditions, say, status)


def load_problem(load: dict) -> str | None:
    """Why the load settings (flags or scenario) cannot be run, or None: NaN, infinities, zero users or rate, and
    values no run could finish with are usage errors, not a run that never ends."""
    for key, (lowest, highest, lowest_allowed) in LOAD_LIMITS.items():
        value = load[key]
        if key == "rate" and value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if (not number or value > highest or value < lowest or (value == lowest and not lowest_allowed)
                or (key == "users" and value != int(value))):
            kind = "a whole number" if key == "users" else "a number"
            bound = "at least" if lowest_allowed else "above"
            return f"--{key} must be {kind} {bound} {lowest:g} and at most {highest:,}, not {value!r}"
    return None


def options_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.workers <= MAX_WORKERS:
        return f"--workers must be from 0 to {MAX_WORKERS}, not {args.workers}"
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= 600):
        return f"--timeout must be above 0 and at most 600 seconds, not {args.timeout!r}"
    if not (math.isfinite(args.max_failures) and 0 <= args.max_failures <= 100):
        return f"--max-failures must be a percentage from 0 to 100, not {args.max_failures!r}"
    return None


def out_problem(out: Path, force: bool) -> str | None:
    """Why the results could not be written to `out`, or None; a probe file is written (and removed, with the
    directories made for it) now, so a read-only or full file system is found before anything is measured."""
    probe = out / ".asyncguard-probe"
    made = [directory for directory in (out, *out.parents) if not directory.exists()]
    try:
        if out.exists() and not out.is_dir():
            return f"--out {out} is a file, not a directory"
        if out.is_dir() and not force and not (out / "results.json").exists() and any(out.iterdir()):
            return f"--out {out} holds other files and no asyncguard run (results.json); give a new or empty " \
                   "directory, or --force"
        out.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as written:
            written.write(bytes(PROBE_BYTES))
            written.flush()
            os.fsync(written.fileno())
    except OSError as error:
        return f"cannot write the results in --out {out}: {error.strerror or error}"
    finally:
        with suppress(OSError):
            probe.unlink(missing_ok=True)
            for directory in made:
                directory.rmdir()
    return None


def measure_and_report(settings, groups, results, out, upstream, old, conditions, say, status) -> int:
    from asyncguard.bench.compare import check_limits, compare, provenance_differences
    from asyncguard.bench.harness import Harness, SaveError, with_upstream_env
    from asyncguard.lifetime import Interrupted, deferred_signals
    from asyncguard.bench.server import ServerError, traceback_end

    harness = Harness(settings, out, results, report=say, live=status)
    try:
        if upstream is not None:
            with upstream:
                harness.run_all([with_upstream_env(group, upstream.url) for group in groups])
        else:
            harness.run_all(groups)
        with deferred_signals():  # the page is written whole
            report = write_report(results, out)
    except ServerError as error:  # the suite's upstream server
        first, *rest = str(error).splitlines()
        said = traceback_end("\n".join(rest))
        print("\n".join([f"asyncguard: error: {first}", *(f"  {line}" for line in said)]), file=sys.stderr)
        return EXIT_RUN_FAILED
    except SaveError as error:
        print(f"asyncguard: error: {error}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except Interrupted as interruption:
        with suppress(OSError):  # after SIGHUP the terminal may be gone
            try:
                harness.save()
            except SaveError as error:
                print(f"asyncguard: error: {error}", file=sys.stderr)
            else:
                print(f"asyncguard: interrupted ({interruption.name}); {len(results.runs)} run(s) saved in "
                      f"{out / 'results.json'}, report: {write_report(results, out)}", file=sys.stderr)
        return interruption.exit_status

    print(summary_table(results))
    print(f"results: {out / 'results.json'}")
    print(f"report: {report}")
    status = EXIT_RUN_FAILED if any(run.status == "failed" for run in results.runs) else EXIT_OK
    deltas = check_limits(results, conditions)
    if old is not None:
        for difference in provenance_differences(old, results):
            print(f"warning: runs differ in {difference}", file=sys.stderr)
        deltas = compare(old, results, conditions) + deltas
    for delta in deltas:
        mark = f"  FAIL ({delta.crossed.text})" if delta.crossed else ""
        if delta.limit is not None:
            print(f"{delta.key} {delta.metric}: {delta.new:g} (limit: {delta.limit.text}){mark}")
        else:
            change = f"{delta.percent:+.1f}%" if delta.percent is not None else "from 0" if delta.new else "+0.0%"
            print(f"{delta.key} {delta.metric}: {delta.old:g} → {delta.new:g} ({change}){mark}")
    if any(delta.crossed for delta in deltas):
        return EXIT_REGRESSION
    return status


def write_report(results, out: Path) -> str:
    """The HTML page of the run; a failure to render is said, never a reason to lose the measured results."""
    from asyncguard.report.cli import write_run_report

    try:
        return str(write_run_report(results, out))
    except Exception as error:  # the results are saved already; `asyncguard report` can render them again
        return f"not written ({type(error).__name__}: {error}); retry with `asyncguard report {out}`"


@contextmanager
def live_status(enabled: bool):
    """A rich status line (phase, live req/s and p99) on a terminal; nothing when quiet or not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda text: None
        return
    from rich.console import Console

    with Console(stderr=True).status("starting") as status:
        yield lambda text: status.update(text)


def summary_table(results) -> str:
    """One line a run; the last column says what to make of it: FAILED (and why), BLOCKED, busy, contended (the
    machine stalled the loop, not the app), or ok."""
    rows = [f"{'flaw':<20} {'side':<7} {'endpoint':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>9} {'lag p99':>8} "
            f"{'others p99':>10}  status"]
    for run in results.runs:
        if run.error:
            rows.append(f"{run.flaw:<20} {run.side:<7} {run.name:<36} error: {run.error.splitlines()[0][:120]}")
            continue
        others = f"{run.bystander.latency.p99:.1f}" if run.bystander else "-"
        verdict = (f"FAILED: {run.failure}" if run.failure else "BLOCKED" if run.blocked else
                   run.loop_verdict if run.loop_verdict in ("busy", "contended") else "ok") + \
            (" (load generator saturated)" if run.generator_saturated else "")
        lag = f"{run.lag.p99:.1f}" if run.lag.measured else "-"
        rows.append(f"{run.flaw:<20} {run.side:<7} {run.name:<36} {run.rps:>8.0f} {run.latency.p50:>8.1f} "
                    f"{run.latency.p99:>9.1f} {lag:>8} {others:>10}  {verdict}")
    return "\n".join(rows)


def parse_endpoint(spec: str, option: str, headers: tuple[tuple[str, str], ...] = ()):
    from asyncguard.bench.manifest import Endpoint

    method, _, path = spec.strip().partition(" ")
    if not method or not path.strip().startswith("/"):
        raise ValueError(f'{option} takes "METHOD /path", not {spec!r}')
    return Endpoint(method.upper(), path.strip(), headers)


class DiscoveryError(Exception):
    """The schema could not be had or named nothing to measure; `status` is the exit status to end with."""

    def __init__(self, message: str, status: int = EXIT_RUN_FAILED):
        super().__init__(message)
        self.status = status


def discover_endpoints(args: argparse.Namespace, url: str | None, headers: tuple, say) -> list | None:
    """The endpoints the app's OpenAPI schema can call (`asyncguard.bench.discover`), read from the running server
    (`--url`) or from one started for the purpose; with `--print-scenario`, written as a scenario and None."""
    from asyncguard.bench.discover import discovered, scenario_text
    from asyncguard.bench.server import Server, ServerError, http_request

    def schema_at(base: str) -> dict:
        status, body, _ = http_request(base + args.openapi, "GET", args.timeout, dict(headers))
        if status != 200:
            raise DiscoveryError(f"{args.openapi}: HTTP {status}; --openapi PATH names where the schema is")
        return json.loads(body)

    try:
        if url is not None:
            schema = schema_at(url)
        else:
            with Server(args.app, app_dir=Path(args.app_dir) if args.app_dir else None,
                        health_path=args.openapi) as server:
                schema = schema_at(server.url)
    except (OSError, ServerError) as error:
        raise DiscoveryError(f"cannot read the OpenAPI schema: {str(error).splitlines()[0]}") from None
    except ValueError as error:
        raise DiscoveryError(f"{args.openapi} is not JSON: {error}") from None
    endpoints, skipped = discovered(schema if isinstance(schema, dict) else {})
    if args.print_scenario:
        print(scenario_text(args.app or url, endpoints, skipped), end="")
        return None
    for skip in skipped:
        say(f"skipped {skip.method} {skip.path}: {skip.why}")
    if not endpoints:
        raise DiscoveryError("the schema names no operation that can be called without more to go on (see above)",
                             EXIT_USAGE)
    return [replace(endpoint, headers=(*headers, *endpoint.headers)) for endpoint in endpoints]


def parse_headers(given: list[str]) -> tuple[tuple[str, str], ...]:
    """`-H "Name: value"` as curl takes it."""
    headers = []
    for header in given:
        name, colon, value = header.partition(":")
        if not colon or not name.strip() or any(ch.isspace() for ch in name.strip()):
            raise ValueError(f'--header takes "Name: value", not {header!r}')
        headers.append((name.strip(), value.strip()))
    return tuple(headers)


def with_body(endpoint, request: dict):
    """The endpoint with the body `--json` or `--data` gave it (`@FILE` read), and its `Content-Type`."""
    if "json" in request:
        try:
            json.loads(request["json"])
        except ValueError as error:
            raise ValueError(f"--json for {request['spec']!r} is not JSON: {error}") from None
        body, content_type = request["json"], "application/json"
    elif "data" in request:
        body, content_type = request["data"], request.get("content_type", "application/octet-stream")
        if body.startswith("@"):
            try:
                body = Path(body[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"--data {request['data']}: cannot read it: {error}") from None
    elif "content_type" in request:
        raise ValueError(f"--content-type for {request['spec']!r} goes with --data")
    else:
        return endpoint
    if not any(name.lower() == "content-type" for name, _ in endpoint.headers):
        endpoint = replace(endpoint, headers=(*endpoint.headers, ("Content-Type", content_type)))
    return replace(endpoint, body=body)


def usage(message: str) -> int:
    print(f"asyncguard: error: {message}", file=sys.stderr)
    return EXIT_USAGE
