"""How a command and the processes it starts end: a signal ends a run like Ctrl-C, and a child dies with its parent.

SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread, so every `with Server(...)`, worker pool and
`finally` on the way out runs: servers, load generators and `check`'s workers are stopped, what was measured or
analysed is saved. Further signals while
that happens are ignored (the clean-up is bounded: a grace period, then SIGKILL). Inside `deferred_signals()` (a
save, a process being started) a signal waits until the block is done, so no file is left half-written and no
child unknown. Children started with `die_with_parent()` get SIGKILL from the kernel if `bench` itself dies
before it can stop them (SIGKILL, the OOM killer): Linux's PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


class Interrupted(KeyboardInterrupt):
    """A signal asked the run to end; it ends like Ctrl-C, with the shell's status for that signal."""

    def __init__(self, signum: int):
        super().__init__(signum)  # the arguments it is rebuilt from when a worker process sends it back
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended: 130, 143, 129."""
        return 128 + self.signum


class _Guard:
    def __init__(self) -> None:
        self.received: int | None = None
        """The signal that ended the run: later ones are ignored while it cleans up."""
        self.depth = 0
        self.pending: int | None = None

    def handle(self, signum: int, frame) -> None:
        if self.received is not None:
            return
        if self.depth:
            self.pending = signum
            return
        self.received = signum
        raise Interrupted(signum)


_guard = _Guard()


@contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `Interrupted` while the block runs (main thread only; elsewhere nothing
    changes). A signal ignored when the command started (`nohup`, a background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    handled = [signum for signum, handler in previous.items() if handler not in (signal.SIG_IGN, None)]
    for signum in handled:
        signal.signal(signum, _guard.handle)
    try:
        yield
    finally:
        for signum in handled:
            signal.signal(signum, previous[signum])
        _guard.received = _guard.pending = None


@contextmanager
def deferred_signals() -> Iterator[None]:
    """A signal that arrives inside the block is raised when the block ends, not in its middle."""
    _guard.depth += 1
    try:
        yield
    finally:
        _guard.depth -= 1
        if not _guard.depth and _guard.pending is not None and _guard.received is None:
            _guard.received, _guard.pending = _guard.pending, None
            raise Interrupted(_guard.received)


@functools.cache
def _prctl() -> Callable | None:
    """Linux's prctl, looked up once (in the parent, before a fork, where the process can); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def set_death_signal(parent: int) -> None:
    """Have the kernel SIGKILL this process when `parent` dies, even by SIGKILL (PR_SET_PDEATHSIG); elsewhere
    nothing is done."""
    prctl = _prctl()
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent died before the call: the signal will never come
        os._exit(1)


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel SIGKILL the child when this process dies; None where Linux's prctl is
    missing. Set between fork and exec, it outlives the exec (and the child's own new session)."""
    if _prctl() is None:
        return None
    return functools.partial(set_death_signal, os.getpid())
