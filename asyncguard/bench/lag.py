"""Event-loop lag, measured inside the server without editing the app.

For a server you start yourself (`asyncguard bench --url`), wrap the app in one line, `app = measured(app)`, and
start it with `ASYNCGUARD_LAG_FILE=/tmp/lag.txt`; `--lag-file /tmp/lag.txt` then reads the same samples.

The harness serves `asyncguard.bench.lag:app` with `ASYNCGUARD_APP=module:attr` (the app under test) and
`ASYNCGUARD_LAG_FILE=path`. The wrapper passes everything through to the app, and on lifespan start-up it starts
a monitor task that sleeps `INTERVAL` and records how late it woke up. A healthy loop wakes within a millisecond or
two; a blocked one wakes when the blocking call returns. Samples go to a file from a separate thread (never
through an endpoint on the loop being measured): one line per sample, `<unix time> <lag in ms>`.

A watchdog thread (`StallWatch`) notices when the monitor's next wake-up is late past `STALL_THRESHOLD_MS` and
samples the loop thread's stack every `STALL_SAMPLE_EVERY` until the loop moves again: each stall is a JSON line in
the same file (`{"stall": ...}`: its start, duration, the stacks seen with the request each served, and the loop
thread's CPU and run-queue time from `/proc`, which tell a loop held by code from one the machine did not run).
Every flush also writes the loop thread's CPU and run-queue totals (`{"cpu": ...}`). A stall also says how long the
garbage collector ran in it (`gc_ms`, from `gc.callbacks`): the runtime held the loop then, not a call; and the
watchdog's own CPU time (`watch_ms`), which the loop's thread may have waited for, and which is not the machine's.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import os
import sys
import sysconfig
import threading
import time
from collections import Counter, deque
from pathlib import Path

INTERVAL = 0.010
STALL_THRESHOLD_MS = 20.0
"""A wake-up this late (past its 10 ms sleep) is a stall: its stacks are sampled."""
STALL_SAMPLE_EVERY = 0.002
COLLECTION_KEPT_FROM = 0.001
"""A garbage collection this long (s) is kept, for the stalls it falls in."""
COLLECTIONS_KEPT = 256
HELD_MS = 5.0
"""How long one holder must be seen, in the loop thread's own time (not waiting for a CPU), to hold the loop: three
samples in a row on a quiet machine."""
STACK_DEPTH = 48
"""Frames kept of each sampled stack, innermost first."""
IDLE_FUNCTIONS = frozenset({"select", "_run_once", "run_forever", "run_until_complete", "run"})
"""The loop's own frames when it waits for events (asyncio, selectors): a stall seen there is not code's."""
COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    for part in attribute.split("."):
        module = getattr(module, part)
    return module


def thread_times(native_id: int) -> tuple[float, float] | None:
    """A thread's CPU time and time spent runnable but waiting for a CPU, in ms (Linux's schedstat), or None."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat", encoding="ascii") as stat:
            on_cpu, waiting, _ = stat.read().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e6, int(waiting) / 1e6


def library_directories() -> tuple[str, ...]:
    """Where code that is not the app's lives: the standard library, site-packages, asyncguard itself."""
    paths = sysconfig.get_paths()
    found = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    found.add(str(Path(__file__).resolve().parent.parent))
    return tuple(sorted({os.path.join(os.path.realpath(path), "") for path in found}))


def relative(path: str, base: Path | None) -> str:
    """A path as `asyncguard check` run from `base` prints it: relative when under it."""
    if base is None:
        return path
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except (ValueError, OSError):
        return path


class FrameKinds:
    """Whose code a frame runs: `app`, `library` (the standard library, site-packages, asyncguard) or `idle` (the
    loop waiting for events). Build it off the loop: resolving the library directories reads the file system."""

    def __init__(self):
        self.libraries = library_directories()
        self._kinds: dict[str, str] = {}

    def __call__(self, code) -> str:
        path = code.co_filename
        kind = self._kinds.get(path)
        if kind is None:
            real = os.path.realpath(path)
            kind = "library" if path.startswith("<") or real.startswith(self.libraries) else "app"
            self._kinds[path] = kind
        if kind == "library" and code.co_name in IDLE_FUNCTIONS and (
                os.sep + "asyncio" + os.sep in path or path.endswith("selectors.py")):
            return "idle"
        return kind


class StallWatch:
    """The watchdog: a thread that samples the loop thread's stack while the monitor's wake-up is overdue."""

    def __init__(self, monitor: "LagMonitor", threshold_ms: float = STALL_THRESHOLD_MS):
        self.monitor = monitor
        self.threshold = threshold_ms / 1000
        self.loop_thread = threading.get_ident()  # made on the loop's thread (`LagMonitor.start`)
        self.one_core = False
        """The server runs on one core (the harness pins it): the loop's thread then waits in the run queue while
        the watchdog samples, which is not the machine's doing. Elsewhere the two run side by side."""
        self._kind: FrameKinds | None = None
        """Made in the watchdog's own thread: resolving the library directories reads the file system."""
        self._thread = threading.Thread(target=self._watch, name="asyncguard-stall-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        """Asleep until the monitor's current wake-up, if it has not come, would be a stall: a healthy loop wakes
        the watchdog about every 20-30 ms, not at a fixed short poll (each wake-up takes the GIL from the loop)."""
        monitor, self._kind = self.monitor, FrameKinds()
        self.one_core = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1
        while not monitor.stopped.is_set():
            due = monitor.due
            late = time.monotonic() - due
            if late > self.threshold:
                self._follow(due)
            elif monitor.stopped.wait(self.threshold - late):
                return

    def _follow(self, due: float) -> None:
        """Sample until the loop wakes (the monitor sets a new `due`), then record the stall. The samples of a run
        with one holder (the coroutine running, or the callback) count as held when the run lasted `HELD_MS` of the
        loop thread's own time: its wall time less what the thread spent waiting for a CPU. One call that holds the
        loop is seen again and again, a loop saturated by short steps almost never; and a short step the machine
        preempted, whose frame shows sample after sample while the thread waits, holds nothing."""
        monitor, before = self.monitor, thread_times(self.monitor.loop_native)
        watching = thread_times(threading.get_native_id())
        seen: Counter = Counter()
        held: Counter = Counter()
        run: list = []
        """The samples of the current holder's run, and (below) when it began."""
        run_began: tuple = (time.monotonic(), before)

        def end_run(now: tuple) -> None:
            """`now`: the time and the thread's totals at the sample that ended the run (the thread ran by then, so
            its run-queue total counts every wait within the run)."""
            waited = now[1][1] - run_began[1][1] if now[1] is not None and run_began[1] is not None else 0.0
            if run and (now[0] - run_began[0]) * 1000 - waited >= HELD_MS:
                held.update(run)
            run.clear()

        previous_holder = None
        while monitor.due == due and not monitor.stopped.is_set():
            frame = sys._current_frames().get(self.loop_thread)
            times = time.monotonic(), thread_times(monitor.loop_native)
            if frame is not None:
                holder, key = self._stack(frame)
                seen[key] += 1
                if holder != previous_holder:
                    end_run(times)
                    run_began = times
                run.append(key)
                previous_holder = holder
            del frame
            time.sleep(STALL_SAMPLE_EVERY)
        end_run((time.monotonic(), thread_times(monitor.loop_native)))
        if monitor.due == due:  # stopped mid-stall: its end is unknown
            return
        woke = monitor.woke
        after = thread_times(monitor.loop_native)
        record = {"stall": round(time.time() - (time.monotonic() - due), 4), "ms": round((woke - due) * 1000, 3),
                  "stacks": [[count, held[key], key[0], [list(f) for f in key[1]]] for key, count in seen.items()]}
        if before is not None and after is not None:
            record["cpu_ms"], record["runqueue_ms"] = round(after[0] - before[0], 3), round(after[1] - before[1], 3)
            watched = thread_times(threading.get_native_id())
            if self.one_core and watching is not None and watched is not None:  # the loop's thread waited for it
                record["watch_ms"] = round(watched[0] - watching[0], 3)
        collected = monitor.collected_between(due, woke)
        if collected:
            record["gc_ms"] = round(collected * 1000, 3)
        monitor.records.append(json.dumps(record, separators=(",", ":")))

    def _stack(self, frame) -> tuple[tuple, tuple[str | None, tuple]]:
        """Who holds the loop (the innermost coroutine's frame, or the outermost frame of a plain callback, with the
        request it serves), and the sample: the request (from the lag wrapper's frame) and the frames, innermost
        first, as `(file, line, function, kind)` with kind `app`, `library` or `idle`."""
        frames, route, running, outermost, request = [], None, None, None, None
        inner_holder, inner_kind = None, "idle"
        while frame is not None:
            code = frame.f_code
            kind = self._kind(code)
            if kind == "idle" and inner_kind != "idle" and outermost is None:
                outermost = inner_holder
            if code is LagMeasuredApp.__call__.__code__:
                scope = frame.f_locals.get("scope") or {}
                route, request = f"{scope.get('method', '')} {scope.get('path', '')}".strip() or None, id(scope)
            else:
                if running is None and code.co_flags & COROUTINE_FLAGS:
                    running = (id(frame), code)
                if len(frames) < STACK_DEPTH:
                    frames.append((code.co_filename, frame.f_lineno, code.co_name, kind))
            inner_holder, inner_kind = (id(frame), code), kind
            frame = frame.f_back
        return (request, running or outermost), (route, tuple(frames))


class LagMonitor:
    def __init__(self, path: str):
        self.path = path
        self.samples: list[tuple[float, float]] = []
        self.records: list[str] = []
        """JSON lines: stalls, and the loop thread's CPU totals."""
        self.due = time.monotonic() + INTERVAL
        """When the monitor's current sleep should end (`time.monotonic`); a new value: the loop moved."""
        self.woke = self.due
        self.task: asyncio.Task | None = None
        self.stopped = threading.Event()
        self.loop_native: int | None = None
        self.collections: deque[tuple[float, float]] = deque(maxlen=COLLECTIONS_KEPT)
        """The garbage collector's longer passes, `(start, end)` in `time.monotonic`: it holds the GIL, so the
        watchdog cannot sample while it runs, and the frame it sees after is the allocation that set it off."""
        self._collecting_since = 0.0
        self._writer = threading.Thread(target=self._write_forever, name="asyncguard-lag-writer", daemon=True)

    def start(self) -> None:
        if self.task is None:
            self.due = time.monotonic() + INTERVAL
            self.loop_native = threading.get_native_id()
            self.task = asyncio.get_running_loop().create_task(self._measure())
            gc.callbacks.append(self._collecting)
            self._writer.start()
            StallWatch(self).start()

    def _collecting(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collecting_since = time.monotonic()
        elif time.monotonic() - self._collecting_since >= COLLECTION_KEPT_FROM:
            self.collections.append((self._collecting_since, time.monotonic()))

    def collected_between(self, start: float, end: float) -> float:
        """Seconds the garbage collector ran between two `time.monotonic` readings."""
        return sum(max(0.0, min(end, stop) - max(start, begin)) for begin, stop in list(self.collections))

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + INTERVAL
            self.due = time.monotonic() + INTERVAL  # not the loop's clock: uvloop's is cached per iteration
            await asyncio.sleep(INTERVAL)
            self.woke = time.monotonic()
            self.samples.append((time.time(), max(0.0, loop.time() - expected) * 1000))

    def _write_forever(self) -> None:
        written = [0, 0]
        with open(self.path, "a", encoding="ascii") as out:
            while not self.stopped.wait(0.25):
                self._flush(out, written)
            self._flush(out, written)

    def _flush(self, out, written: list[int]) -> None:
        pending, records = self.samples[written[0]:], self.records[written[1]:]
        out.writelines(f"{stamp:.4f} {lag:.3f}\n" for stamp, lag in pending)
        out.writelines(f"{record}\n" for record in records)
        times = thread_times(self.loop_native) if self.loop_native else None
        if times is not None:
            out.write(json.dumps({"cpu": round(time.time(), 4), "cpu_ms": round(times[0], 3),
                                  "runqueue_ms": round(times[1], 3)}, separators=(",", ":")) + "\n")
        out.flush()
        written[0] += len(pending)
        written[1] += len(records)

    def stop(self) -> None:
        """On the loop: stop measuring, and tell the writer to flush what is left and finish."""
        if self.task is not None:
            self.task.cancel()
        if self._collecting in gc.callbacks:
            gc.callbacks.remove(self._collecting)
        self.stopped.set()

    def wait_written(self, timeout: float = 2.0) -> None:
        """Blocks until the writer's last flush: run it off the loop."""
        if self._writer.is_alive():
            self._writer.join(timeout)

    async def finish(self) -> None:
        self.stop()
        await asyncio.to_thread(self.wait_written)


class LagMeasuredApp:
    """An ASGI app that runs `inner` and, for as long as the lifespan lasts, the lag monitor."""

    def __init__(self, inner, lag_file: str):
        self.inner = inner
        self.monitor = LagMonitor(lag_file)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.inner(scope, receive, send)

        async def receive_and_watch():
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.monitor.start()
            elif message["type"] == "lifespan.shutdown":
                await self.monitor.finish()
            return message

        try:
            await self.inner(scope, receive_and_watch, send)
        finally:
            await self.monitor.finish()


def measured(app, lag_file: str | None = None):
    """`app = measured(app)`: a server you run yourself records its loop lag for `asyncguard bench --url URL
    --lag-file FILE`, in `lag_file` or the file `ASYNCGUARD_LAG_FILE` names; with neither, the app is returned as it
    is (nothing is measured, nothing is written)."""
    path = lag_file or os.environ.get("ASYNCGUARD_LAG_FILE")
    return LagMeasuredApp(app, path) if path else app


def _from_environment():
    target, lag_file = os.environ.get("ASYNCGUARD_APP"), os.environ.get("ASYNCGUARD_LAG_FILE")
    if not target or not lag_file:
        return None
    return LagMeasuredApp(_load(target), lag_file)


app = _from_environment()
