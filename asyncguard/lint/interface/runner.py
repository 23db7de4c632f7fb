"""Checking many files: through the cache, in parallel worker processes when there are many to analyse.

Nothing here imports libcst: a warm run that finds every file in the cache never pays for loading it.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Callable, Iterable, Iterator

from asyncguard.lint.interface.cache import CacheEntry, FindingsCache, digest, program_key
from asyncguard.lint.interface.config import Settings
from asyncguard.lint.interface.files import SourceFile, distinct_module_names
from asyncguard.lint.findings import NOTICES, Finding, internal_error, not_checked
from asyncguard.lint.engine.program import LibraryCalls, ModuleRecord, Program, needed
from asyncguard.lint.engine.names import Outline, Project, full_names, layout
from asyncguard.lint.engine.reach import off_the_app, unmounted, unreached
from asyncguard.lifetime import STOP_SIGNALS, Interrupted, set_death_signal

PARALLEL_THRESHOLD = 24
"""Below this many files to analyse, starting worker processes costs more than it saves."""


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0


# -- worker processes ----------------------------------------------------------------------------------------------
_worker_state: dict = {}


def _init_worker(settings: Settings, enabled: frozenset[str], modules: dict[str, Path], roots: list[Path]) -> None:
    """The knowledge and the project, once per process and run: a serial run's whole-program pass goes on with the
    ones its analysis built, and the modules they already parsed and outlined."""
    from asyncguard.lint.knowledge.base import build_knowledge
    from asyncguard.lint.engine.names import Project

    run = (settings, enabled, modules, roots)
    previous = _worker_state.get("run")
    if previous is not None and all(mine is given for mine, given in zip(previous, run)):
        return
    knowledge = build_knowledge(settings.extra_blocking_calls, settings.allowed_calls,
                                [Path(directory) for directory in settings.learned], project_packages(modules))
    project = Project(modules, knowledge, search_roots=roots)
    _worker_state.update(knowledge=knowledge, enabled=enabled, project=project, run=run)


def project_packages(modules: dict[str, Path]) -> set[str]:
    """The project's top-level packages: the first part of each module's full name (`full_names`)."""
    return {name.split(".", 1)[0] for name in full_names(modules).values()}


STOP_GRACE = 0.5
"""Seconds an interrupted run gives its workers to stop before killing them."""


def _start_worker(parent: int, *state) -> None:
    """A worker leaves Ctrl-C and hang-ups, which reach the whole process group, to the parent; the parent stops it
    with SIGTERM, and it dies with the parent if that is killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_requested)
    set_death_signal(parent)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while the pool started it
    gc.disable()  # see `collector_paused`: a worker lives for one run
    _init_worker(*state)


def _stop_requested(signum: int, frame) -> None:
    """Abandon the task at hand, and every one after it, but never a result half sent: a worker killed while
    writing one would leave the pool's reader waiting for the rest of it forever."""
    _worker_state["stopping"] = True
    if _worker_state.get("in_task"):
        raise Interrupted(signum)


def _stoppable_task(fn: Callable, *args, **kwargs):
    """A task in a worker: until it returns it has sent nothing, so SIGTERM may abandon it."""
    if _worker_state.get("stopping"):
        raise Interrupted(signal.SIGTERM)
    _worker_state["in_task"] = True
    try:
        return fn(*args, **kwargs)
    finally:
        _worker_state["in_task"] = False


class _StoppablePool(ProcessPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        """Every task stoppable; and a worker started here (the pool starts them as work arrives) must not take a
        signal before it has set its handlers: it starts with the stop signals blocked. So do the pool's threads,
        which leaves the signals to the main one."""
        if not hasattr(signal, "pthread_sigmask"):  # Windows
            return super().submit(_stoppable_task, fn, *args, **kwargs)
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().submit(_stoppable_task, fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextmanager
def worker_pool(workers: int, settings: Settings, enabled: frozenset[str], modules: dict[str, Path],
                roots: list[Path]) -> Iterator[ProcessPoolExecutor]:
    """Worker processes set up by `_init_worker`, for both passes. Left by an exception (an interruption: Ctrl-C,
    SIGTERM), the pool's pending work is cancelled and its workers are stopped, killed if they do not stop soon."""
    earlier = set(multiprocessing.active_children())
    pool = _StoppablePool(max_workers=workers, initializer=_start_worker,
                          initargs=(os.getpid(), settings, enabled, modules, roots))
    try:
        yield pool
    except BaseException:
        _stop(pool, [worker for worker in multiprocessing.active_children() if worker not in earlier])
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor, workers: list) -> None:
    """Each worker abandons its task (SIGTERM), what has not started is cancelled, and the pool winds down; what
    still runs after STOP_GRACE is killed (held up in native code, a parser, so not sending a result)."""
    for worker in workers:
        worker.terminate()
    killer = threading.Timer(STOP_GRACE, lambda: [worker.kill() for worker in workers if worker.is_alive()])
    killer.start()
    try:
        pool.shutdown(cancel_futures=True)  # waits for the pool's own thread: none is left running at exit
    finally:
        killer.cancel()


Analysed = tuple[str | None, list[dict], list[str], dict | None, list[list]]
"""(content digest, findings as JSON, project files consulted, summary, calls on the loop) of one file."""


def _check_in_worker(source: SourceFile, data: bytes | None) -> Analysed:
    """Analyse one file, reading it unless given its bytes."""
    if data is None:
        try:
            data = source.path.read_bytes()
        except OSError as error:
            return None, [not_checked(source.display, f"cannot read: {error.strerror or error}").to_json()], [], \
                None, []
    from asyncguard.lint.engine.checker import analyse_bytes

    project = _worker_state["project"]
    analysis = analyse_bytes(data, source, _worker_state["knowledge"], _worker_state["enabled"], project)
    dependencies = sorted(str(p) for p in project.consulted if p != source.path)
    project.consulted = set()
    return (digest(data), [f.to_json() for f in analysis.findings], dependencies, analysis.summary,
            analysis.loop_calls)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run builds its trees: each collection scans every live node, and on real
    code that took half a cold run (6.4 s of which `ast.parse` 3.3 s, against 3.9 s without, on a 2.5M-line service)
    for 4% more peak memory: trees and summaries hold few cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(files: Iterable[SourceFile], settings: Settings, use_cache: bool = True,
        progress: Callable[[int], None] | None = None, buffers: dict[Path, bytes] | None = None) -> RunResult:
    """Check every file, reusing cached analyses, analysing the rest in parallel when there are many; then the
    whole-program pass over what they call. `buffers`: files' texts as an editor holds them (`--stdin-filename`),
    checked instead of what is on disk, and never cached."""
    with collector_paused():
        return _run(files, settings, use_cache, progress, buffers)


def _run(files: Iterable[SourceFile], settings: Settings, use_cache: bool,
         progress: Callable[[int], None] | None, buffers: dict[Path, bytes] | None) -> RunResult:
    files = list(files)
    distinct_module_names(files)
    enabled = settings.enabled_codes()
    cache = FindingsCache(settings.project_root, settings.fingerprint(), enabled=use_cache)
    result = RunResult()
    unchanged: list[tuple[SourceFile, os.stat_result, CacheEntry]] = []
    pending: list[tuple[SourceFile, os.stat_result, bytes | None]] = []
    stamps: list[tuple[str, str, os.stat_result]] = []  # what the whole-program pass depends on
    for source in files:
        result.files_checked += 1
        if source.problem is not None:
            result.findings.append(not_checked(source.display, source.problem))
            continue
        if buffers and source.path in buffers:
            pending.append((source, None, buffers[source.path]))
            continue
        key = str(source.path)
        try:
            stat = source.path.stat()
            if not S_ISREG(stat.st_mode):  # a FIFO or device named *.py would block a read forever
                result.findings.append(not_checked(source.display, "not a regular file"))
                continue
            cached = cache.lookup(key, stat)
            data = None
            if cached is None and key in cache.entries:  # touched since: compare contents
                data = source.path.read_bytes()
                cached = cache.lookup_content(key, stat, digest(data))
        except OSError as error:
            result.findings.append(not_checked(source.display, f"cannot read: {error.strerror or error}"))
            continue
        stamps.append((source.display, source.module, stat))
        if cached is not None and cached.findings is not None:
            unchanged.append((source, stat, cached))
            continue
        pending.append((source, stat, data))
    key = program_key(stamps)
    reused = None if pending else cache.program_view(key)
    if reused is None:  # the whole-program pass runs: it needs the unchanged files' summaries, or their check again
        cache.load_analysis()
        pending += [(source, stat, None) for source, stat, cached in unchanged if not cached.analysed]
        unchanged = [(source, stat, cached) for source, stat, cached in unchanged if cached.analysed]
    for source, _, cached in unchanged:
        result.findings.extend(Finding.from_json({**f, "path": source.display}) for f in cached.findings)
        if progress:
            progress(1)

    project_layout = functools.cache(  # both passes resolve against the same project
        lambda: layout([source for source in files if source.problem is None]))
    analysed = _analyse_all(pending, settings, enabled, project_layout, cache)
    analysed_records: list[ModuleRecord] = []
    try:
        for (source, stat, _), (content_digest, findings, dependencies, summary, loop_calls) in zip(pending, analysed):
            if content_digest is not None and stat is not None and not any(f["code"] == "AG002" for f in findings):
                cache.store(str(source.path), stat, content_digest, [{**f, "path": ""} for f in findings],
                            dependencies, summary, loop_calls, source.module)
            result.findings.extend(Finding.from_json({**f, "path": source.display}) for f in findings)
            if summary is not None:
                analysed_records.append(ModuleRecord(source.module, source.display, summary, loop_calls))
            if progress:
                progress(1)
        if reused is not None:  # nothing changed since the run that found these
            result.findings.extend(map(Finding.from_json, reused["findings"]))
            dead = {tuple(place) for place in reused["unreached"]}
        else:
            records = [ModuleRecord(source.module, source.display, summary, cached.loop_calls)
                       for source, _, cached in unchanged
                       if (summary := cached.summaries.get(source.module)) is not None]
            found = whole_program(records + analysed_records, files, settings, enabled, cache, project_layout)
            result.findings.extend(found)
            dead = unreached_coroutines(result.findings, files, settings, enabled, project_layout)
            if not buffers and not any(f.code == "AG002" for f in found):
                cache.store_program(key, [f.to_json() for f in found], sorted(map(list, dead)))
        result.findings = [f for f in result.findings if (f.path, f.context) not in dead]
    finally:  # interrupted too: the workers stopped, then what was analysed kept in the cache
        analysed.close()
        cache.save()
    result.findings.sort(key=lambda f: f.sort_key)
    return result


def whole_program(records: list[ModuleRecord], files: list[SourceFile], settings: Settings,
                  enabled: frozenset[str], cache: FindingsCache,
                  project_layout: Callable[[], tuple[dict[str, Path], list[Path]]]) -> list[Finding]:
    """AG800: the calls on the loop that block through helpers. Modules the chains reach are summarised on demand
    (most of a large tree never is), a level of the call graph at a time, in parallel, through the same cache as
    the findings."""
    if not needed(records, enabled):
        return []
    modules, roots = project_layout()
    _init_worker(settings, enabled, modules, roots)
    project = _worker_state["project"]
    shown = {source.path: source.display for source in files}
    failures: list[Finding] = []  # AG002 for each module the pass itself failed on
    with ExitStack() as stack:
        pool: list[ProcessPoolExecutor] = []

        def summarize_all(jobs: list[tuple[str, bytes]]) -> Iterable[tuple[dict, list[str]]]:
            workers = min(os.cpu_count() or 1, 8)
            if len(jobs) < 4 or workers < 2:
                return [_summarize_in_worker(module, data) for module, data in jobs]
            if not pool:
                pool.append(stack.enter_context(worker_pool(workers, settings, enabled, modules, roots)))
            return pool[0].map(_summarize_in_worker, *zip(*jobs))

        def load(names: list[str]) -> list[ModuleRecord | None]:
            found: dict[str, ModuleRecord | None] = {}
            jobs: list[tuple[str, bytes, str, Path, os.stat_result, str]] = []
            for module in names:
                path = project.modules[module]
                display = shown.get(path) or display_path(path)
                try:
                    stat = path.stat()
                    cached = cache.lookup(str(path), stat)
                    if cached is None or module not in cached.summaries:
                        data = path.read_bytes()
                        content_digest = digest(data)
                        cached = cache.lookup_content(str(path), stat, content_digest)
                        if cached is None or module not in cached.summaries:
                            jobs.append((module, data, content_digest, path, stat, display))
                            continue
                except OSError:  # unreadable: it is reported when checked itself
                    found[module] = None
                    continue
                found[module] = ModuleRecord(module, display, cached.summaries[module], [])
            summaries = summarize_all([(module, data) for module, data, *_ in jobs])
            for (module, _, content_digest, path, stat, display), (summary, dependencies, error) in \
                    zip(jobs, summaries):
                if error is not None:
                    failures.append(internal_error(display, error))
                else:
                    cache.store_summary(str(path), stat, content_digest, summary, dependencies, module)
                found[module] = ModuleRecord(module, display, summary, [])
            return [found[module] for module in names]

        def worth_loading(name: str) -> bool:
            """A summary in the cache costs nothing to read; otherwise ask the module's outline."""
            entry = cache.entries.get(str(project.modules[project.defining_module(name)]))
            return entry is not None and bool(entry.summaries) or project.may_define(name)

        use_cached_outlines(project, cache)
        program = Program(enabled, module_of=project.defining_module, load=load, may_define=worth_loading,
                          library=LibraryCalls(_worker_state["knowledge"]), mentioning=project.modules_mentioning,
                          implementations=project.implementations)
        for record in records:
            program.add(record)
        found = program.findings(failures) + failures
    for module in project.made_outlines:
        cache.store_outline(str(project.modules[module]), module, project.outlines[module].to_json())
    return found


def unreached_coroutines(findings: list[Finding], files: list[SourceFile], settings: Settings,
                         enabled: frozenset[str],
                         project_layout: Callable[[], tuple[dict[str, Path], list[Path]]]) -> set[tuple[str, str]]:
    """The (path, context) of the findings in coroutines that nothing in the project runs: private ones nothing
    names, routes of routers nothing mounts, modules the app never imports and functions nothing it runs calls
    (asyncguard.lint.engine.reach)."""
    modules, roots = project_layout()
    _init_worker(settings, enabled, modules, roots)
    project = _worker_state["project"]
    module_of = {source.display: source.module for source in files if source.problem is None}
    checked = [f for f in findings if f.code not in NOTICES]
    own = {source.display: source.module for source in files
           if source.problem is None and project.modules.get(source.module) == source.path}
    texts = functools.cache(lambda: checked_texts(files))
    return (unreached(checked, module_of.get, project.outline_of, lambda: project.all_sources().values())
            | unmounted(checked, own.get, project.outline_of, texts)
            | off_the_app(checked, module_of, texts, project.libraries))


def checked_texts(files: list[SourceFile]) -> dict[str, str]:
    """Every checked file's text by the path findings show, as far as it can be read."""
    texts = {}
    for source in files:
        if source.problem is None:
            try:
                texts[source.display] = source.path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
    return texts


def use_cached_outlines(project: Project, cache: FindingsCache) -> None:
    """The project reads a module's outline from the cache where the file has not changed since it was made."""
    def known_outline(module: str) -> Outline | None:
        path = project.modules.get(module)
        entry = cache.entries.get(str(path)) if path is not None else None
        data = entry.outlines.get(module) if entry is not None else None
        return Outline.from_json(data) if data is not None and entry.is_current(str(path)) else None

    project.known_outline = known_outline


def _summarize_in_worker(module: str, data: bytes) -> tuple[dict, list[str], str | None]:
    """The summary of a module reached by the whole-program pass, the project files it consulted, and the
    checker's own error on it (`None`): a bug in one module must not end the run."""
    from asyncguard.lint.engine.checker import SourceError, decode, summarize_source

    project = _worker_state["project"]
    project.consulted = set()
    error = None
    try:
        summary = summarize_source(decode(data), module, _worker_state["knowledge"], project)
    except SourceError:
        summary = {}
    except Exception as failure:  # reported as AG002 on that module
        summary, error = {}, f"{type(failure).__name__}: {failure}"
    path = project.modules.get(module)
    return summary, sorted(str(p) for p in project.consulted if p != path), error


def display_path(path: Path) -> str:
    """Relative to the working directory where the file is under it, as the checked files are shown."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _analyse_all(pending: list, settings: Settings, enabled: frozenset[str],
                 project_layout: Callable[[], tuple[dict[str, Path], list[Path]]],
                 cache: FindingsCache) -> Iterator[Analysed]:
    if not pending:
        return
    modules, roots = project_layout()
    workers = min(os.cpu_count() or 1, 8)
    if len(pending) < PARALLEL_THRESHOLD or workers < 2:
        _init_worker(settings, enabled, modules, roots)
        use_cached_outlines(_worker_state["project"], cache)
        yield from (_check_in_worker(source, data) for source, _, data in pending)
        return
    with worker_pool(workers, settings, enabled, modules, roots) as executor:
        chunk = max(1, min(64, len(pending) // (workers * 8)))
        yield from executor.map(_check_in_worker, [p[0] for p in pending], [p[2] for p in pending],
                                chunksize=chunk)
