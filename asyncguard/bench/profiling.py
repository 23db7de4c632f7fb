"""Profiling as a separate, bounded pass: one pyinstrument session over the whole server process.

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

    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    profiler = Profiler(interval=SAMPLING_INTERVAL, async_mode="disabled")
    profiler.start()
    try:
        server.run()
    finally:
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
                      top: int = 12) -> ProfileSummary:
    """Top frames by self time, and the share of all samples spent inside the flaw's blocking frames."""
    from pyinstrument.session import Session

    try:  # pyinstrument's own file, truncated on a full disk, raises JSONDecodeError
        session = Session.load(directory / "session.pyisession")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProfileError(f"cannot read the profile in {directory}: {type(error).__name__}: {error}") from None
    root = session.root_frame()
    total = root.time if root is not None else 0.0
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
