"""Profiling as a separate, bounded pass: one pyinstrument session over the server process once it has started.

Profilers distort throughput, and pyinstrument cannot run concurrent async-context profilers, so the harness
profiles each endpoint in a second server, started as `python -m asyncguard.bench.profiling`, under light load.
The session samples the event loop's thread (async_mode="disabled"): what blocks the loop is what it shows.
On shutdown it writes the session, pyinstrument's HTML and a speedscope JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asyncguard.bench.results import FrameStat, ProfileSummary

SAMPLING_INTERVAL = 0.001


class ProfileError(Exception):
    """The profile could not be read (a server that died, a file cut short by a full disk): the profile's error,
    never the run's."""


def serve(app: str, host: str, port: int, out: Path) -> int:
    import uvicorn
    from pyinstrument import Profiler
    from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer

    profiler = Profiler(interval=SAMPLING_INTERVAL, async_mode="disabled")

    class ServedThenProfiled(uvicorn.Server):
        """The profile starts once the app has started: its imports and start-up are not what the load costs."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            profiler.start()

    server = ServedThenProfiled(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning"))
    try:
        server.run()
    finally:
        if profiler.is_running:  # else the app never started: no profile, which `summarize_profile` says
            session = profiler.stop()
            out.mkdir(parents=True, exist_ok=True)
            session.save(out / "session.pyisession")
            (out / "profile.html").write_text(HTMLRenderer().render(session), encoding="utf-8")
            (out / "profile.speedscope.json").write_text(SpeedscopeRenderer().render(session), encoding="utf-8")
    return 0


def frame_matches(frame, pattern: str) -> bool:
    """`function` or `file-path-part:function` against a pyinstrument frame."""
    where, _, function = pattern.rpartition(":")
    return frame.function == function and (not where or where in (frame.file_path or "<built-in>"))


def summarize_profile(directory: Path, relative_to: Path, blocking_frames: tuple[str, ...],
                      top: int = 12, app_dir: Path | None = None) -> ProfileSummary:
    """Top frames by self time, and the share of all samples spent inside the flaw's blocking frames; for an app
    without a manifest (no frames named), inside the app's own functions that held the loop longest."""
    from pyinstrument.session import Session

    try:  # pyinstrument's own file, truncated on a full disk, raises JSONDecodeError
        session = Session.load(directory / "session.pyisession")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProfileError(f"cannot read the profile in {directory}: {type(error).__name__}: {error}") from None
    root = session.root_frame()
    total = root.time if root is not None else 0.0
    if not blocking_frames and app_dir is not None and root is not None:
        blocking_frames = own_frames_that_held(root, app_dir)
    self_time: dict[tuple[str, str, int | None], float] = {}
    blocking = 0.0
    stack = [(root, False)] if root is not None else []
    while stack:
        frame, inside = stack.pop()
        matched = not inside and any(frame_matches(frame, p) for p in blocking_frames)
        if matched:
            blocking += frame.time  # outermost match only: nested matches are already counted
        if not frame.is_synthetic:
            key = (frame.function, frame.file_path_short or "", frame.line_no)
            self_time[key] = self_time.get(key, 0.0) + frame.total_self_time
        stack.extend((child, inside or matched) for child in frame.children)
    ranked = sorted(self_time.items(), key=lambda item: -item[1])[:top]
    return ProfileSummary(
        html=str((directory / "profile.html").relative_to(relative_to)),
        speedscope=str((directory / "profile.speedscope.json").relative_to(relative_to)),
        duration=round(session.duration, 3),
        top_frames=[FrameStat(function, file, line, round(seconds, 4), round(seconds / total, 4) if total else 0.0)
                    for (function, file, line), seconds in ranked if seconds > 0],
        blocking_share=round(blocking / total, 4) if total else 0.0,
        blocking_frames=list(blocking_frames),
    )


OWN_FRAMES_NAMED = 3


def own_frames_that_held(root, app_dir: Path) -> tuple[str, ...]:
    """The app's own functions (files under `app_dir`) with the most time inside them, callees included, as
    `dir/file.py:function` patterns (`frame_matches`)."""
    base = app_dir.resolve()
    held: dict[str, float] = {}
    stack = [(root, frozenset())]
    while stack:
        frame, open_keys = stack.pop()
        key = None
        if not frame.is_synthetic and frame.file_path:
            try:
                relative = Path(frame.file_path).resolve().relative_to(base.parent)
            except ValueError:
                relative = None
            if relative is not None and relative.parts[0] == base.name:
                key = f"{relative.as_posix()}:{frame.function}"
                if key not in open_keys:  # a recursive call is inside its first call already
                    held[key] = held.get(key, 0.0) + frame.time
        stack.extend((child, open_keys | {key} if key else open_keys) for child in frame.children)
    return tuple(sorted(held, key=lambda name: -held[name])[:OWN_FRAMES_NAMED])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve an ASGI app under one pyinstrument session.")
    parser.add_argument("--app", required=True)
    parser.add_argument("--app-dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.app_dir:
        sys.path.insert(0, args.app_dir)
    return serve(args.app, args.host, args.port, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
