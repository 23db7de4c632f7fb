"""`asyncguard check` under faults: signals in the middle of the parallel phase, and a damaged cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from asyncguard.cli import main
from asyncguard.lifetime import Interrupted, handle_signals
from asyncguard.lint.interface.cache import CACHE_DIR, FindingsCache, read_checksummed, write_checksummed

HANDLERS = "".join(f"async def handler_{n}():\n    time.sleep(1)\n    return requests.get('http://127.0.0.1:9')\n\n"
                   for n in range(4))
PACKAGES, MODULES = 80, 100
with_workers = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on one core the check starts no workers")


@pytest.fixture(scope="module")
def large_tree(tmp_path_factory) -> Path:
    """Enough files for the parallel phase to run for a few seconds on two cores."""
    root = tmp_path_factory.mktemp("large")
    (root / "pyproject.toml").write_text("[project]\nname = 'large'\n")
    for package in range(PACKAGES):
        directory = root / f"package_{package}"
        directory.mkdir()
        for module in range(MODULES):
            (directory / f"module_{module}.py").write_text(f"import time\nimport requests\n\n{HANDLERS}")
    return root


def session_processes(session: int) -> list[psutil.Process]:
    """Every live process of the session the check was started in (it leads its own)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def wait_for_workers(process: subprocess.Popen, busy: float = 0.2, timeout: float = 60) -> None:
    """Until the check runs its two worker processes (the parallel phase), and they have used `busy` seconds of CPU
    between them: a share of the work that does not depend on how fast the machine is (the whole phase takes about
    three and a half seconds of CPU)."""
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout
    while len(workers := parent.children()) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "the parallel phase never started"
        time.sleep(0.05)
    while sum(sum(worker.cpu_times()[:2]) for worker in workers) < busy:
        assert process.poll() is None and time.monotonic() < deadline, "the workers never got busy"
        time.sleep(0.02)


def leftover(session: int, timeout: float = 2) -> list[psutil.Process]:
    """The session's processes still alive after `timeout` (workers killed with their parent take a moment)."""
    deadline = time.monotonic() + timeout
    while (alive := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.fixture
def start_check():
    """Start `python -m asyncguard check` in a session of its own; whatever of it is left is killed afterwards."""
    started: list[subprocess.Popen] = []

    def start(tree: Path, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "asyncguard", "check", "-q", *args, str(tree)],
                                   cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        for survivor in session_processes(process.pid):
            survivor.kill()
        if process.poll() is None:
            process.kill()
        process.communicate()


@with_workers
@pytest.mark.parametrize("to_group", [True, False], ids=["to the group", "to the main process"])
@pytest.mark.parametrize("signum,status", [  # Ctrl-C: the terminal signals the whole process group
    (signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_ends_the_run_at_once_with_one_line_and_no_process_left(large_tree, start_check, signum,
                                                                         to_group, status):
    process = start_check(large_tree, "--no-cache")
    wait_for_workers(process)
    (os.killpg if to_group else os.kill)(process.pid, signum)
    sent = time.monotonic()
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 10 s after {signal.Signals(signum).name}")
    assert time.monotonic() - sent < 2
    assert process.returncode == status
    assert err == "asyncguard: interrupted\n"
    assert leftover(process.pid) == []


@with_workers
def test_workers_die_with_a_killed_parent(large_tree, start_check):
    process = start_check(large_tree, "--no-cache")
    wait_for_workers(process)
    process.kill()
    process.communicate(timeout=10)
    assert leftover(process.pid) == []


@with_workers
def test_an_interrupted_run_keeps_what_it_analysed_in_the_cache(large_tree, start_check):
    process = start_check(large_tree)
    wait_for_workers(process, busy=1.0)  # past start-up and a few chunks of 64 files, far from all 8,000
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 130
    [cache_file] = (large_tree / CACHE_DIR).glob("findings-*.json")
    assert 0 < len(read_checksummed(cache_file)[0]) < PACKAGES * MODULES
    assert [p.name for p in (large_tree / CACHE_DIR).iterdir() if p.suffix == ".tmp"] == []


def test_a_signal_while_the_cache_is_saved_waits_until_it_is_written_whole(tmp_path, monkeypatch):
    cache = FindingsCache(tmp_path, "fingerprint")
    module = tmp_path / "m.py"
    module.write_text("x = 1\n")
    cache.store(str(module), module.stat(), "digest", [])
    written = []

    def interrupted_while_writing(path, value):
        if not written:
            os.kill(os.getpid(), signal.SIGINT)
        write_checksummed(path, value)
        written.append(path.name)

    monkeypatch.setattr("asyncguard.lint.interface.cache.write_checksummed", interrupted_while_writing)
    with handle_signals(), pytest.raises(Interrupted):
        cache.save()
    assert written == [cache.file.name, cache.analysis_file.name]
    assert str(module) in read_checksummed(cache.file)[0]


def test_help_names_the_exit_status_of_an_interrupted_run(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    described = " ".join(capsys.readouterr().out.split())
    assert "130 interrupted (143 on SIGTERM, 129 on SIGHUP)" in described


# -- a damaged cache -----------------------------------------------------------------------------------------------
HELPER_AND_HANDLER = ("import time\n\ndef pause():\n    time.sleep(1)\n\n"
                      "async def f():\n    time.sleep(1)\n    pause()\n")  # a summary and a call on the loop to cache


@pytest.fixture
def cached_project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app.py").write_text(HELPER_AND_HANDLER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cache_file(project: Path) -> Path:
    [found] = (project / CACHE_DIR).glob("findings-*.json")
    return found


@pytest.mark.parametrize("damage", [
    lambda entry: "not an entry",
    lambda entry: {**entry, "findings": "AG101"},
    lambda entry: {**entry, "findings": [{"code": "AG101"}]},
    lambda entry: {**entry, "findings": [{**entry["findings"][0], "line": "4"}]},
    lambda entry: {**entry, "findings": [{**entry["findings"][0], "chain": [{"name": 1}]}]},
    lambda entry: {**entry, "mtime_ns": "yesterday"},
    lambda entry: {**entry, "size": True},
    lambda entry: {**entry, "digest": None},
    lambda entry: {**entry, "dependencies": [["pkg/a.py", 1]]},
    lambda entry: {**entry, "summaries": {"app": []}},
    lambda entry: {**entry, "summaries": {"app": {"functions": {"app.g": {"line": 1, "blocking": [["x"]],
                                                                           "calls": []}}}}},
    lambda entry: {**entry, "summaries": {"app": {"classes": {"app.C": "Base"}}}},
    lambda entry: {**entry, "outlines": {"app": {"assigned": "x"}}},
    lambda entry: {**entry, "loop_calls": [["app.g", 4]]},
    lambda entry: {**entry, "unexpected": 1},
    lambda entry: {key: value for key, value in entry.items() if key != "digest"},
], ids=["not-a-table", "findings-not-a-list", "finding-incomplete", "line-a-string", "chain-step", "mtime",
        "size-a-bool", "digest", "dependency", "summary-a-list", "blocking-call", "class-bases", "outline", "loop-call",
        "unknown-field", "missing-field"])
def test_a_cache_entry_of_the_wrong_shape_is_a_miss_and_is_rewritten(cached_project, capsys, damage):
    assert main(["check", "-q"]) == 1
    first = capsys.readouterr().out
    assert "AG101" in first and "AG800" in first
    path = cache_file(cached_project)
    entries, _ = read_checksummed(path)
    [(key, entry)] = entries.items()
    path.write_text(json.dumps({key: damage(entry)}))
    for _ in range(2):  # the damaged run, then the one after it
        assert main(["check", "-q"]) == 1
        assert capsys.readouterr() == (first, "")
    assert read_checksummed(path) == ({key: entry}, True)


def test_a_cache_file_of_the_wrong_shape_is_an_empty_cache(cached_project, capsys):
    assert main(["check", "-q"]) == 1
    first = capsys.readouterr().out
    cache_file(cached_project).write_text("[1, 2, 3]")
    assert main(["check", "-q"]) == 1
    assert capsys.readouterr() == (first, "")
    assert list(read_checksummed(cache_file(cached_project))[0]) == [str(cached_project / "app.py")]


@pytest.mark.parametrize("damage", [
    lambda part: "not a part",
    lambda part: {**part, "summaries": {"app": []}},
    lambda part: {**part, "summaries": {"app": {"classes": {"app.C": "Base"}}}},
    lambda part: {**part, "outlines": {"app": {"assigned": "x"}}},
    lambda part: {**part, "loop_calls": [["app.g", 4]]},
    lambda part: {**part, "digest": "0" * 32},
    lambda part: {key: value for key, value in part.items() if key != "summaries"},
], ids=["not-a-table", "summary-a-list", "class-bases", "outline", "loop-call", "other-content", "missing-field"])
def test_a_damaged_analysis_part_is_a_miss_when_the_whole_program_pass_needs_it(cached_project, capsys, damage):
    """The summaries live in a file of their own, read only when the whole-program pass runs: a part of the wrong
    shape then has its file checked again (the chain is still found), and the part is rewritten."""
    assert main(["check", "-q"]) == 1
    first = capsys.readouterr().out
    [analysis] = (cached_project / CACHE_DIR).glob("analysis-*.json")
    parts, _ = read_checksummed(analysis)
    [(key, part)] = parts.items()
    analysis.write_text(json.dumps({key: damage(part)}))
    app = cached_project / "app.py"
    os.utime(app, (time.time() + 5, time.time() + 5))  # the same content, touched: the pass runs again
    assert main(["check", "-q"]) == 1
    assert capsys.readouterr() == (first, "")
    assert read_checksummed(analysis) == ({key: part}, True)
