"""Servers under test: uvicorn in its own process group on a free 127.0.0.1 port, stopped on every exit path.

`Server` is a context manager: leaving it, by a normal end, an exception or Ctrl-C, stops the whole process group
(SIGINT, then SIGKILL after a grace period), so no process is ever left behind. Only processes started here are
signalled, by their own group id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

LOOPBACK = "127.0.0.1"


class ServerError(Exception):
    """The server did not start or died; the message carries the end of its stderr."""


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


class Server:
    """`uvicorn APP` on 127.0.0.1, one worker, access log off (it costs ~30% on a trivial endpoint)."""

    def __init__(self, app: str, app_dir: Path | None = None, port: int | None = None, env: dict | None = None,
                 health_path: str = "/health", cpus: Sequence[int] | None = None, startup_timeout: float = 20.0,
                 extra_args: Sequence[str] = ()):
        self.app = app
        self.app_dir = app_dir
        self.port = port or free_port()
        self.env = env or {}
        self.health_path = health_path
        self.cpus = cpus
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()
        self._stderr_text = ""

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
        self.process = subprocess.Popen(
            self.command(), env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=self._stderr,
            start_new_session=True,  # its own process group: stopping it stops its children too
        )
        try:
            if self.cpus and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(self.process.pid, set(self.cpus))
            self._wait_ready()
        except BaseException:  # Ctrl-C while starting too: never leave the process behind
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.app} exited with status {self.process.returncode} before it was ready:\n"
                                  f"{self.stderr_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1):
                    return
            except urllib.error.HTTPError as error:
                if error.code < 500:  # it answers: ready, whatever it thinks of the path
                    return
                time.sleep(0.05)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.05)
        raise ServerError(f"{self.app} was not ready within {self.startup_timeout:.0f} s:\n{self.stderr_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self, limit: int = 4000) -> str:
        if not self._stderr.closed:
            self._stderr.seek(0)
            self._stderr_text = self._stderr.read().decode("utf-8", errors="replace")
        return self._stderr_text[-limit:]

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGINT the process group (uvicorn shuts down cleanly), SIGKILL it if it is still there after `grace`."""
        process = self.process
        if process is None:
            return None
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
        return process.returncode

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.stderr_tail()  # kept for messages after the file is gone
        self._stderr.close()
