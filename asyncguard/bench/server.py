"""Servers under test: uvicorn in its own process group on a free 127.0.0.1 port, stopped on every exit path.

`Server` is a context manager: leaving it, by a normal end, an exception, Ctrl-C or SIGTERM/SIGHUP (see
`lifetime`), stops the whole process group (SIGINT, then SIGKILL after a grace period), and the kernel kills the
server if the harness itself dies first; so no process is ever left behind. Only processes started here are
signalled, by their own group id. Of the server's stderr only the last `STDERR_KEPT` bytes are kept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

from asyncguard.lifetime import deferred_signals, die_with_parent

LOOPBACK = "127.0.0.1"
STDERR_KEPT = 64 * 1024
"""Bytes of a server's stderr kept for messages: its last words, never all of it."""
FAILING_GRACE = 1.0
"""Seconds a server may answer its health path with 5xx before start-up is said to have failed."""


class ServerError(Exception):
    """The server did not start or died; the message carries the end of its stderr."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to report, never a request to send: it may point at another host."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
"""No redirects followed, no proxy: a request of the harness only ever reaches the server on 127.0.0.1."""


def http_request(url: str, method: str = "GET", timeout: float = 30.0, headers: dict[str, str] | None = None,
                 body: str | None = None) -> tuple[int, bytes, str | None]:
    """Status, body and `Location` of one request; raises OSError (URLError too) when nothing answers."""
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=body.encode() if body is not None else None)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read(), None
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), error.headers.get("Location")


LOOPBACK_NAMES = {"127.0.0.1": LOOPBACK, "localhost": LOOPBACK, "::1": "[::1]"}


def loopback_url(url: str) -> str:
    """`http://127.0.0.1:PORT` of a server the user runs, without a trailing slash; ValueError for any other host
    (load is only ever sent to this machine) or scheme."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise ValueError(f"--url {url!r} is not a URL: {error}") from None
    if parts.scheme != "http" or host is None:
        raise ValueError(f"--url takes http://127.0.0.1:PORT, not {url!r}")
    if host not in LOOPBACK_NAMES:
        raise ValueError(f"--url {url!r}: only a server on this machine (127.0.0.1) is measured, not {host}")
    if parts.path.strip("/") or parts.query:
        raise ValueError(f"--url {url!r}: give the server's address only; endpoints take the paths")
    return f"http://{LOOPBACK_NAMES[host]}{f':{port}' if port else ''}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def traceback_end(stderr: str, lines: int = 3) -> list[str]:
    """The app's own error: the last lines of its last traceback, down to the exception; [] without one."""
    text = [line for line in stderr.splitlines() if line.strip()]
    starts = [index for index, line in enumerate(text) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return []
    end = next((index for index in range(starts[-1] + 1, len(text)) if not text[index].startswith(" ")),
               len(text) - 1)
    return text[max(starts[-1] + 1, end + 1 - lines):end + 1]


class StreamTail:
    """The last `limit` bytes a child writes to a pipe, read by a thread so that the child never blocks on a full
    pipe; older output is discarded (a chatty app once drove the harness to 2.2 GB in 4 s)."""

    def __init__(self, limit: int = STDERR_KEPT):
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def follow(self, stream) -> None:
        self._reader = threading.Thread(target=self._drain, args=(stream,), name="asyncguard-stderr", daemon=True)
        self._reader.start()

    def _drain(self, stream) -> None:
        with stream:
            while chunk := stream.read1(65536):
                with self._lock:
                    self._chunks.append(chunk)
                    self._size += len(chunk)
                    while self._size - len(self._chunks[0]) >= self.limit:
                        self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        with self._lock:
            kept = b"".join(self._chunks)[-self.limit:]
        return kept.decode("utf-8", errors="replace")

    def wait_closed(self, timeout: float = 2.0) -> None:
        """The writer is gone: read what it wrote last (a grandchild holding the pipe is not waited for)."""
        if self._reader is not None:
            self._reader.join(timeout)


class Server:
    """`uvicorn APP` on 127.0.0.1, one worker, access log off (it costs ~30% on a trivial endpoint)."""

    def __init__(self, app: str, app_dir: Path | None = None, port: int | None = None, env: dict | None = None,
                 health_path: str = "/health", cpus: Sequence[int] | None = None, startup_timeout: float = 20.0,
                 extra_args: Sequence[str] = (), waiting: Callable[[str], None] = lambda state: None,
                 label: str | None = None):
        self.app = app
        self.label = label or app
        """The app as messages name it (the app under test, not the wrapper that serves it)."""
        self.app_dir = app_dir
        self.port = port or free_port()
        self.env = env or {}
        self.health_path = health_path
        self.cpus = cpus
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.waiting = waiting
        """Told, about once a second while it starts, what the server does: not listening yet, or failing."""
        self.process: subprocess.Popen | None = None
        self._stderr = StreamTail()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", LOOPBACK, "--port", str(self.port),
                   "--no-access-log", "--log-level", "info", *self.extra_args]
        if self.app_dir is not None:
            command += ["--app-dir", str(self.app_dir)]
        return command

    def start(self) -> "Server":
        if not port_is_free(self.port):
            raise ServerError(f"port {self.port} on {LOOPBACK} is already in use")
        try:
            with deferred_signals():  # a signal now waits until the process is known, to be stopped
                self.process = subprocess.Popen(
                    self.command(), env={**os.environ, **self.env}, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, preexec_fn=die_with_parent(),
                    start_new_session=True,  # its own process group: stopping it stops its children too
                )
                self._stderr.follow(self.process.stderr)
            if self.cpus and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(self.process.pid, set(self.cpus))
            self._wait_ready()
        except BaseException:  # Ctrl-C or SIGTERM while starting too: never leave the process behind
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until the health path answers below 500. A server that answers 5xx is up and failing: said after
        `FAILING_GRACE`, not after the whole start-up timeout; one not listening is waited for."""
        started = time.monotonic()
        failing_since = None
        told = started
        while True:
            if self.process.poll() is not None:
                self._stderr.wait_closed()
                raise ServerError(f"{self.label} exited with status {self.process.returncode} before it was ready"
                                  f"{self._last_words(exited=True)}")
            try:
                status, body, _ = http_request(self.url + self.health_path, timeout=1)
            except (urllib.error.URLError, OSError) as error:
                failing_since = None
                reason = getattr(error, "reason", error)
                state = (f"accepts connections on {LOOPBACK}:{self.port} but does not answer"
                         if isinstance(reason, TimeoutError) else f"not listening on {LOOPBACK}:{self.port} yet")
            else:
                if status < 500:  # it answers: ready, whatever it thinks of the path
                    return
                failing_since = failing_since or time.monotonic()
                state = f"listening, but answers GET {self.health_path} with HTTP {status}: {body[:200]!r}"
                if time.monotonic() - failing_since >= FAILING_GRACE:
                    raise ServerError(f"{self.label} is {state}{self._last_words()}")
            now = time.monotonic()
            if now - started >= self.startup_timeout:
                raise ServerError(f"{self.label} was not ready within {self.startup_timeout:.0f} s: {state}"
                                  f"{self._last_words()}")
            if now - told >= 1.0:
                told = now
                self.waiting(state)
            time.sleep(0.05)

    def _last_words(self, exited: bool = False) -> str:
        """`: <the app's exception>` (or, when it exited, its last line) and then its stderr's end: the message's
        first line says what went wrong."""
        tail = self.stderr_tail()
        last = traceback_end(tail, lines=1) or ([line for line in tail.splitlines() if line.strip()][-1:] if exited
                                                 else [])
        return (f": {last[0].strip()}" if last else "") + f"\n{tail}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self, limit: int = 4000) -> str:
        return self._stderr.text()[-limit:]

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGINT the process group (uvicorn shuts down cleanly), SIGKILL it if it is still there after `grace`."""
        process = self.process
        if process is None:
            return None
        with deferred_signals():  # a signal meanwhile is raised once the group is gone
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                except ProcessLookupError:
                    pass
            try:  # a child that outlived its parent in the group
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._stderr.wait_closed()
        return process.returncode

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
