"""The `asyncguard` command line.

Exit status of `asyncguard check`: 0 no findings, 1 findings, 2 usage, configuration or internal error; 130
interrupted (143 on SIGTERM, 129 on SIGHUP).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Sequence

from asyncguard import __version__
from asyncguard.lifetime import handle_signals

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
OUTPUT_FORMATS = ["full", "concise", "text", "json", "json-lines", "sarif", "github", "gitlab", "junit", "html"]


class UsageError(Exception):
    """Reported as `asyncguard: error: <message>` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asyncguard", description="Prove whether a FastAPI service is really async.")
    parser.add_argument("--version", action="version", version=f"asyncguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    check = commands.add_parser("check", help="find blocking calls that run on the event loop",
                                description="Find blocking calls that run on the event loop. Exit status: 0 clean, "
                                            "1 findings, 2 usage, configuration or internal error, 130 "
                                            "interrupted (143 on SIGTERM, 129 on SIGHUP).")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH", help="files or directories (default: .)")
    check.add_argument("--output-format", "--format", dest="output_format", choices=OUTPUT_FORMATS, default=None,
                       help="full: each finding with its code and chain (the default on a terminal); concise: a line "
                            "each (the default otherwise; text is its older name); json, json-lines, sarif, github, "
                            "gitlab, junit; html: a page of the findings with their code")
    check.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                       help="colour the full and concise formats (auto: on a terminal, unless NO_COLOR is set)")
    check.add_argument("--select", help="comma-separated rule codes or prefixes to enable (default: all)")
    check.add_argument("--extend-select", help="rule codes or prefixes to enable in addition")
    check.add_argument("--ignore", help="rule codes or prefixes to disable")
    check.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                       help="glob of files or directories to skip, instead of the configured and default ones "
                            "(repeatable)")
    check.add_argument("--extend-exclude", action="append", default=[], metavar="PATTERN",
                       help="glob of files or directories to skip, besides the configured ones (repeatable)")
    check.add_argument("--stdin-filename", metavar="PATH",
                       help="check the source on standard input as the file PATH (an editor's buffer; the "
                            "project's other files are read from disk); give - or no path")
    check.add_argument("--config", metavar="FILE", help="pyproject.toml to read instead of the nearest one")
    check.add_argument("--output-file", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    check.add_argument("--statistics", action="store_true", help="print the number of findings per rule")
    check.add_argument("--no-cache", action="store_true", help="neither read nor write the findings cache")
    check.add_argument("--python", metavar="PATH",
                       help="the project's interpreter or venv: learn the installed libraries the code imports "
                            "(default: .venv or venv beside pyproject.toml, or $VIRTUAL_ENV; \"\" for none)")
    check.add_argument("--fix", action="store_true",
                       help="apply safe fixes (time.sleep → await asyncio.sleep), then report what remains")
    check.add_argument("--diff", action="store_true",
                       help="print the fixes as a unified diff instead of writing them (exit 1 when there are any)")
    check.add_argument("--unsafe-fixes", action="store_true",
                       help="with --fix or --diff: also run other blocking calls in a thread "
                            "(await asyncio.to_thread(f, ...)), which not every object allows")
    check.add_argument("--write-baseline", metavar="FILE", help="record the current findings in FILE and exit 0")
    check.add_argument("--baseline", metavar="FILE", help="report only findings that FILE does not record")
    check.add_argument("--exit-zero", action="store_true",
                       help="exit 0 even with findings (errors still exit 2): for a step that uploads the report")
    check.add_argument("--exit-non-zero-on-fix", action="store_true",
                       help="with --fix: exit 1 when anything was fixed, even if nothing remains")
    check.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")

    bench = commands.add_parser("bench", help="load-test and profile an app or the sample suite",
                                description="Load-test and profile an ASGI app, or every flaw of the sample apps. "
                                            "Exit status: 0 measured, 1 a run failed, 2 usage error, "
                                            "3 a --fail-if limit crossed, 130 interrupted (143 on SIGTERM, 129 on "
                                            "SIGHUP; results kept).")
    from asyncguard.bench.cli import add_arguments

    add_arguments(bench)

    report = commands.add_parser("report", help="render results as HTML: a run's page, or a comparison of runs",
                                 description="Render bench results as self-contained HTML. One results file: its "
                                             "page; two or more: a comparison against the first. Exit status: 0 "
                                             "written, 2 usage error.")
    from asyncguard.report.cli import add_arguments as add_report_arguments

    add_report_arguments(report)

    commands.add_parser("server", help="the checker as a language server over stdio (diagnostics, fixes)",
                        description="A language server over stdio: diagnostics on open and save from the "
                                    "whole-program pass over the workspace, the safe fixes as code actions.")
    commands.add_parser("rules", help="list every rule")
    rule = commands.add_parser("rule", help="explain one rule: what it does, why it is bad, example, use instead")
    rule.add_argument("code", help="a rule code (AG101) or name (blocking-sleep-in-async-function)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        warnings.simplefilter("ignore", SyntaxWarning)  # invalid escapes in checked code are not our findings
        with handle_signals() if args.command == "check" else nullcontext():
            return run_command(args)
    except KeyboardInterrupt as interruption:  # Ctrl-C at any point; SIGTERM and SIGHUP during `check` too
        print("asyncguard: interrupted", file=sys.stderr)
        return 128 + getattr(interruption, "signum", signal.SIGINT)


def run_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "check":
            return run_check(args)
        if args.command in EXTRA_MODULES:
            require_bench_extra(args.command)
        if args.command == "bench":
            from asyncguard.bench.cli import run_bench

            return run_bench(args)
        if args.command == "report":
            from asyncguard.report.cli import run_report

            return run_report(args)
        if args.command == "server":
            from asyncguard.lint.interface.server import serve

            return serve()
        if args.command == "rules":
            from asyncguard.lint.interface.docs import rules_listing
            sys.stdout.write(rules_listing())
            return EXIT_CLEAN
        if args.command == "rule":
            return run_rule(args.code)
    except UsageError as error:
        print(f"asyncguard: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


EXTRA_MODULES = {
    "bench": ("uvicorn", "locust", "httpx", "pyinstrument", "hdrh", "pydantic", "jinja2", "matplotlib"),
    "report": ("jinja2", "matplotlib", "pydantic"),
}
"""What each command needs of the `bench` extra: the plain install is the checker alone."""


def require_bench_extra(command: str) -> None:
    missing = [name for name in EXTRA_MODULES[command] if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"`asyncguard {command}` needs the bench extra (missing: {', '.join(missing)}): "
                         "pip install 'asyncguard[bench]'")


def run_rule(code: str) -> int:
    from asyncguard.lint.interface.docs import rule_doc
    from asyncguard.lint.rule import lookup

    rule = lookup(code)
    if rule is None:
        raise UsageError(f"no rule {code!r}; `asyncguard rules` lists them")
    sys.stdout.write(rule_doc(rule))
    return EXIT_CLEAN


@contextmanager
def progress_bar(total: int, enabled: bool):
    """A rich progress bar on a terminal, for runs long enough to want one; silent otherwise (and in CI)."""
    if not enabled or total < 200:
        yield None
        return
    try:
        from rich.progress import Progress
    except ImportError:  # the linter-only install has no rich
        yield None
        return
    with Progress(transient=True) as bar:
        task = bar.add_task("checking", total=total)
        yield lambda done: bar.advance(task, done)


def learn_from_environment(settings, files: list, explicit: str | None, quiet: bool) -> None:
    """What the project's environment adds to the knowledge (`--python`), and the digest of all learned data."""
    from asyncguard.lint.knowledge.learned_data import knowledge_digest

    chosen = explicit if explicit is not None else settings.python
    if chosen != "":  # "": none, and nothing of the learning machinery loaded
        learn_installed(settings, files, chosen, quiet)
    settings.learned_digest = knowledge_digest([Path(directory) for directory in settings.learned])


def learn_installed(settings, files: list, chosen: str | None, quiet: bool) -> None:
    """Add to `settings.learned` what the interpreter `chosen` (or the one found beside the project) has installed
    that the checked code imports."""
    from asyncguard.lint.knowledge.environment import UnusableInterpreter, find_python, learn_environment
    from asyncguard.lint.knowledge.learn import default_cache

    try:
        python = find_python(settings.project_root, chosen)
        if python is not None:
            project = {source.module.split(".", 1)[0] for source in files if source.problem is None}
            report = (lambda message: None) if quiet else (lambda message: print(f"asyncguard: {message}",
                                                                                  file=sys.stderr))
            settings.learned = [str(learn_environment(python, [source.path for source in files], project,
                                                      default_cache(), report))]
    except UnusableInterpreter as error:
        raise UsageError(str(error)) from None
    except OSError as error:  # a cache that cannot be written: the run goes on with the shipped knowledge
        print(f"asyncguard: warning: not learning from {chosen or 'the project environment'}: "
              f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    from asyncguard.lint.interface.config import ConfigError, load_settings, parse_codes
    from asyncguard.lint.interface.files import discover, path_error
    from asyncguard.lint.interface.output import FORMATTERS, format_statistics
    from asyncguard.lint.interface.runner import display_path, run

    buffers = None
    if args.stdin_filename is not None:
        if args.paths not in (["."], ["-"]):
            raise UsageError("with --stdin-filename, the source is read from standard input: give - or no path")
        if args.fix or args.diff or args.write_baseline:
            raise UsageError("--stdin-filename goes without --fix, --diff and --write-baseline")
        args.paths = [args.stdin_filename]
        buffers = {Path(os.path.abspath(args.stdin_filename)): sys.stdin.buffer.read()}
    elif "-" in args.paths:
        raise UsageError("- (standard input) goes with --stdin-filename PATH, the file it stands for")
    for path in args.paths if buffers is None else ():
        error = path_error(path)
        if error is not None:
            raise UsageError(error)
    if args.unsafe_fixes and not (args.fix or args.diff):
        raise UsageError("--unsafe-fixes goes with --fix or --diff")
    if args.output_format == "html" and importlib.util.find_spec("jinja2") is None:
        raise UsageError("--format html needs Jinja2: pip install 'asyncguard[bench]'")
    try:
        settings = load_settings(args.paths, args.config)
        if args.select is not None:
            settings.select = parse_codes(args.select, "--select")
        settings.extend_select += parse_codes(args.extend_select, "--extend-select")
        settings.ignore += parse_codes(args.ignore, "--ignore")
    except ConfigError as error:
        raise UsageError(str(error)) from None
    excludes = settings.walk_excludes(args.exclude, args.extend_exclude)
    files = list(discover(args.paths, settings.project_root, excludes))
    learn_from_environment(settings, files, args.python, quiet=args.quiet)
    if args.write_baseline:  # refused before the run, not after it
        from asyncguard.lint.interface.baseline import BaselineError, refuse_over_source

        try:
            refuse_over_source(Path(args.write_baseline), [source.path for source in files])
        except BaselineError as error:
            raise UsageError(str(error)) from None
    if args.exit_non_zero_on_fix and not args.fix:
        raise UsageError("--exit-non-zero-on-fix goes with --fix")
    fixed = 0
    with progress_bar(len(files), enabled=not args.quiet and sys.stderr.isatty()) as advance:
        result = run(files, settings, use_cache=not args.no_cache, progress=advance, buffers=buffers)
    drop_ignored_in_files(result, settings)
    if args.fix or args.diff:
        from asyncguard.lint.interface.fixes import fix_files, write_fixes

        fixes, not_fixed = fix_files(result.findings, files, settings, unsafe=args.unsafe_fixes)
        if args.diff:
            sys.stdout.write("".join(fix.diff() for fix in fixes))
            for skipped in not_fixed:
                print(skipped.message(), file=sys.stderr)
            return EXIT_FINDINGS if (fixes or not_fixed) and not args.exit_zero else EXIT_CLEAN
        fixes, not_written = write_fixes(fixes)
        fixed = sum(fix.fixed for fix in fixes)
        for skipped in not_fixed + not_written:
            print(skipped.message(), file=sys.stderr)
        if not args.quiet:
            count = fixed
            print(f"Fixed {count} finding{'s' * (count != 1)} in {len(fixes)} file{'s' * (len(fixes) != 1)}.",
                  file=sys.stderr)
        if fixes:
            result = run(files, settings, use_cache=not args.no_cache)
            drop_ignored_in_files(result, settings)
    if args.write_baseline:
        from asyncguard.lint.interface.baseline import write_baseline

        try:
            count = write_baseline(Path(args.write_baseline), result.findings)
        except OSError as error:
            raise UsageError(f"cannot write {args.write_baseline}: {error.strerror}") from None
        print(f"Recorded {count} finding{'s' * (count != 1)} in {args.write_baseline}.", file=sys.stderr)
        return EXIT_CLEAN
    if args.baseline:
        from asyncguard.lint.interface.baseline import BaselineError, new_findings, read_baseline

        try:
            result.findings, known = new_findings(result.findings, read_baseline(Path(args.baseline)))
        except BaselineError as error:
            raise UsageError(str(error)) from None
        if known and not args.quiet:
            print(f"{known} finding{'s' * (known != 1)} recorded in {args.baseline} not shown.", file=sys.stderr)

    terminal = not args.output_file and sys.stdout.isatty()
    chosen = args.output_format or ("full" if terminal else "concise")
    color = args.color == "always" or (args.color == "auto" and terminal and not os.environ.get("NO_COLOR"))
    if args.statistics:
        report = format_statistics(result.findings, as_json=chosen == "json")
    else:
        report = FORMATTERS[chosen](result.findings, result.files_checked, quiet=args.quiet, color=color,
                                    root=settings.project_root,
                                    buffers={display_path(path): text.decode("utf-8", "replace")
                                             for path, text in (buffers or {}).items()})
    if args.output_file:
        try:
            Path(args.output_file).write_text(report, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.output_file}: {error.strerror}") from None
    else:
        write_stdout(report)
    if any(f.code == "AG002" for f in result.findings):
        return EXIT_ERROR
    if args.exit_zero:
        return EXIT_CLEAN
    return EXIT_FINDINGS if result.findings or (args.exit_non_zero_on_fix and fixed) else EXIT_CLEAN


def drop_ignored_in_files(result, settings) -> None:
    """`per-file-ignores`, before anything uses the findings: the report, the fixes, the baseline."""
    result.findings = [f for f in result.findings if not settings.ignored_in_file(Path(f.path), f.code)]


def write_stdout(text: str) -> None:
    """Whatever the terminal's encoding: a character it cannot show (the chain's →, a path's) is escaped."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    sys.stdout.write(text)
