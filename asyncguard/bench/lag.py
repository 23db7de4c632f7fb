"""Event-loop lag, measured inside the server without editing the app.

For a server you start yourself (`asyncguard bench --url`), wrap the app in one line, `app = measured(app)`, and
start it with `ASYNCGUARD_LAG_FILE=/tmp/lag.txt`; `--lag-file /tmp/lag.txt` then reads the same samples.

The harness serves `asyncguard.bench.lag:app` with `ASYNCGUARD_APP=module:attr` (the app under test) and
`ASYNCGUARD_LAG_FILE=path`. The wrapper passes everything through to the app, and on lifespan start-up it starts
a monitor task that sleeps `INTERVAL` and records how late it woke up. A healthy loop wakes within a millisecond or
two; a blocked one wakes when the blocking call returns. Samples go to a file from a separate thread (never
through an endpoint on the loop being measured): one line per sample, `<unix time> <lag in ms>`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time

INTERVAL = 0.010


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    for part in attribute.split("."):
        module = getattr(module, part)
    return module


class LagMonitor:
    def __init__(self, path: str):
        self.path = path
        self.samples: list[tuple[float, float]] = []
        self.task: asyncio.Task | None = None
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_forever, name="asyncguard-lag-writer", daemon=True)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._measure())
            self._writer.start()

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            late = max(0.0, loop.time() - expected)
            self.samples.append((time.time(), late * 1000))

    def _write_forever(self) -> None:
        written = 0
        with open(self.path, "a", encoding="ascii") as out:
            while not self._stop.wait(0.25):
                written = self._flush(out, written)
            self._flush(out, written)

    def _flush(self, out, written: int) -> int:
        pending = self.samples[written:]
        out.writelines(f"{stamp:.4f} {lag:.3f}\n" for stamp, lag in pending)
        out.flush()
        return written + len(pending)

    def stop(self) -> None:
        """On the loop: stop measuring, and tell the writer to flush what is left and finish."""
        if self.task is not None:
            self.task.cancel()
        self._stop.set()

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
