"""A pytest guard against blocking the event loop: `pytest --asyncguard-max-stall-ms 100`.

Installing asyncguard registers the plugin (or name it: `-p asyncguard.pytest_plugin`); it does nothing until a limit
is given, on the command line or as the ini option `asyncguard_max_stall_ms`. Every asyncio loop a test runs
(pytest-asyncio's, anyio's, the one in the portal thread of Starlette's `TestClient`) runs its callbacks through
`asyncio.Handle._run`: the guard times each one, and a watchdog thread samples the stack of a thread whose callback
has run for long. A test whose loop was held longer than the limit fails, naming the line that held it (the innermost
frame of the project's own code), the test's line when the loop ran in another thread, and the stack. It sees what
guards that raise on the calls they know cannot: CPU work and C extensions. `@pytest.mark.asyncguard_allow_stall`
allows a known stall, `(ms=500)` one of up to 500 ms. uvloop's loops do not run through `asyncio.Handle` and are not
watched.
"""

from __future__ import annotations

import asyncio.events
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OPTION, INI = "--asyncguard-max-stall-ms", "asyncguard_max_stall_ms"
MARKER = "asyncguard_allow_stall"
STACK_DEPTH = 64


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("asyncguard").addoption(
        OPTION, type=float, default=None, metavar="N",
        help="fail a test whose event loop is held longer than N ms by one callback (asyncguard)")
    parser.addini(INI, "the default of --asyncguard-max-stall-ms (asyncguard)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(ms=None): allow this test's event loop a stall (of up to ms "
                                       "milliseconds; any without it) under --asyncguard-max-stall-ms")
    limit = config.getoption(OPTION)
    if limit is None and config.getini(INI):
        try:
            limit = float(config.getini(INI))
        except ValueError:
            raise pytest.UsageError(f"{INI} = {config.getini(INI)!r}: expected a number of milliseconds") from None
    if limit is None:
        return
    if limit <= 0:
        raise pytest.UsageError(f"{OPTION} {limit:g}: expected a positive number of milliseconds")
    guard = LoopGuard(limit, str(config.rootpath))
    config.pluginmanager.register(guard, "asyncguard-loop-guard")
    config.add_cleanup(guard.uninstall)
    guard.install()


Frame = tuple[str, int, str, str]
"""`(file, line, function, kind)`, kind as `FrameKinds` says."""


@dataclass
class Stall:
    ms: float
    thread: str
    samples: Counter = field(default_factory=Counter)
    """Stacks seen (innermost frame first) and how often."""
    during: Frame | None = None
    """The test's own frame when the loop ran in another thread (a `TestClient` portal)."""
    coroutine: Frame | None = None
    """Where the task the callback stepped was defined: the site when no sample was taken."""


class LoopGuard:
    """Times every asyncio callback while it runs, samples the long ones, and fails the tests they held."""

    def __init__(self, limit_ms: float, rootdir: str):
        self.limit_ms = limit_ms
        self.rootdir = rootdir
        self.poll = max(0.001, min(0.005, limit_ms / 1000 / 10))
        self.running: dict[int, list[float]] = {}
        """Per thread, the start of each callback it is running (more than one with nested loops)."""
        self.samples: dict[tuple[int, float], Counter] = {}
        self.during: dict[tuple[int, float], Frame | None] = {}
        self.stalls: list[Stall] = []
        self.stalls_lock = threading.Lock()
        """Loop threads (a portal's) append while the test's thread takes the list."""
        self.test_thread = threading.get_ident()
        self.test_file: str | None = None
        from asyncguard.bench.lag import FrameKinds, relative  # only with a limit: nothing of asyncguard otherwise

        self.kinds, self.relative = FrameKinds(), relative
        self._original = asyncio.events.Handle._run
        self._stopped = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="asyncguard-loop-guard", daemon=True)

    def install(self) -> None:
        guard, original, running, limit = self, self._original, self.running, self.limit_ms / 1000
        clock, ident = time.perf_counter, threading.get_ident

        def _run(handle):
            thread = ident()
            starts = running.setdefault(thread, [])
            started = clock()
            starts.append(started)
            try:
                return original(handle)
            finally:
                starts.pop()
                took = clock() - started
                if took > limit:
                    guard.record(handle, (thread, started), took)
                elif guard.samples:
                    guard.samples.pop((thread, started), None)
                    guard.during.pop((thread, started), None)

        self._wrapper = _run.__code__
        asyncio.events.Handle._run = _run
        self._watchdog.start()

    def uninstall(self) -> None:
        asyncio.events.Handle._run = self._original
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.poll):
            self._sample_long_callbacks()

    def _sample_long_callbacks(self) -> None:
        """One round of samples, in a function of its own so that no frame outlives it (a frame kept alive keeps
        a test's objects alive into the next test)."""
        now, frames = time.perf_counter(), None
        for thread, starts in list(self.running.items()):
            innermost = starts[-1:]
            if not innermost or now - innermost[0] < self.poll:
                continue
            frames = frames or sys._current_frames()
            frame, key = frames.get(thread), (thread, innermost[0])
            sample = self.stack(frame) if frame is not None else None
            during = self.test_frame(frames.get(self.test_thread)) if thread != self.test_thread else None
            if starts[-1:] != innermost:  # the callback ended meanwhile: its key would never be removed
                continue
            if sample is not None:
                self.samples.setdefault(key, Counter())[sample] += 1
            if during is not None:
                self.during.setdefault(key, during)

    def stack(self, frame) -> tuple[Frame, ...]:
        frames = []
        while frame is not None and len(frames) < STACK_DEPTH:
            code = frame.f_code
            if code is not self._wrapper:
                frames.append((code.co_filename, frame.f_lineno, code.co_name, self.kinds(code)))
            frame = frame.f_back
        return tuple(frames)

    def test_frame(self, frame) -> Frame | None:
        """The innermost frame of the running test's file in the test thread's stack."""
        while frame is not None:
            if frame.f_code.co_filename == self.test_file:
                return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name, "app"
            frame = frame.f_back
        return None

    def record(self, handle, key: tuple[int, float], took: float) -> None:
        """On the loop's thread, once a callback held it past the limit."""
        stall = Stall(took * 1000, threading.current_thread().name, self.samples.pop(key, Counter()),
                      self.during.pop(key, None), stepped_coroutine(handle))
        with self.stalls_lock:
            self.stalls.append(stall)

    @pytest.hookimpl
    def pytest_collection_modifyitems(self, items: list) -> None:
        """A marker's allowance is checked before any test runs: a bad one is a usage error, not a lost session."""
        for item in items:
            allowed_ms(item, self.limit_ms)

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        with self.stalls_lock:
            self.stalls = []
        self.test_file = os.path.join(self.rootdir, location[0])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """The call's report fails for the stalls of its setup (an async fixture's) and its own; the teardown's
        for its own. Setup itself never fails for one: the test still runs, and says what held the loop."""
        outcome = yield
        report = outcome.get_result()
        if call.when == "setup" and report.passed:
            return
        with self.stalls_lock:
            stalls, self.stalls = self.stalls, []
        allowed = allowed_ms(item, self.limit_ms)
        over = [stall for stall in stalls if allowed is not None and stall.ms > allowed]
        if not over or report.skipped:
            return
        text = "\n\n".join(self.describe(stall, allowed) for stall in sorted(over, key=lambda s: -s.ms))
        if report.passed:
            report.outcome, report.longrepr = "failed", text
        else:
            report.sections.append(("asyncguard: the event loop was held", text))

    def describe(self, stall: Stall, allowed: float) -> str:
        stack = max(stall.samples, key=stall.samples.get) if stall.samples else ()
        site = next((frame for frame in stack if frame[3] == "app"), stack[0] if stack else stall.coroutine)
        where = f" by {self.place(site)}" if site else ""
        lines = [f"asyncguard: the event loop was held {stall.ms:.0f} ms (limit {allowed:g} ms){where}"]
        if stall.thread != threading.main_thread().name:
            during = f", while the test was at {self.place(stall.during)}" if stall.during is not None else ""
            lines.append(f"  in the loop of thread {stall.thread}{during}")
        shown = [frame for frame in reversed(stack) if frame[3] == "app"]
        if shown:
            lines.append("  stack, outermost first:")
            lines += [f"    {self.place(frame)}" for frame in shown]
            below = stack[:stack.index(shown[-1])]
            if below:
                lines.append(f"    → {len(below)} library frame{'s' * (len(below) > 1)}, innermost "
                             f"{self.place(below[0])}")
        elif not stack and stall.coroutine is not None:
            lines.append("  (too short to sample: the task's coroutine is named)")
        lines.append(f"  a known stall: @pytest.mark.{MARKER}(ms=...)")
        return "\n".join(lines)

    def place(self, frame: Frame) -> str:
        return f"{self.relative(frame[0], Path(self.rootdir))}:{frame[1]} in {frame[2]}"


def allowed_ms(item: pytest.Item, limit_ms: float) -> float | None:
    """The stall a test may have: the limit, the marker's `ms`, or None for any."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return limit_ms
    allowed = marker.kwargs.get("ms", marker.args[0] if marker.args else None)
    if allowed is not None and not isinstance(allowed, (int, float)):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{MARKER}(ms={allowed!r}): expected milliseconds")
    return allowed


def stepped_coroutine(handle) -> Frame | None:
    """The coroutine a task-step callback advanced, where it is defined."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    coroutine = task.get_coro() if isinstance(task, asyncio.Task) else None
    code = getattr(coroutine, "cr_code", None)
    return (code.co_filename, code.co_firstlineno, code.co_name, "app") if code is not None else None
