"""The pytest guard (`asyncguard.pytest_plugin`) run by pytest itself on a test module: blocking sleeps and CPU work
fail the test that ran them, naming the line; awaiting passes; pytest-asyncio, anyio and `TestClient` are watched."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

GUARDED = '''import asyncio
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient


def spin(seconds):
    end, turns = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:  # spin
        turns += 1  # spin
    return turns


@pytest.mark.asyncio
async def test_sleeps():
    time.sleep(0.3)  # held: test_sleeps


@pytest.mark.asyncio
async def test_spins():
    spin(0.3)  # caller: test_spins


@pytest.mark.asyncio
async def test_awaits():
    await asyncio.sleep(0.3)


@pytest.mark.anyio
async def test_anyio_sleeps():
    time.sleep(0.3)  # held: test_anyio_sleeps


app = FastAPI()


@app.get("/slow")
async def slow():
    time.sleep(0.3)  # held: test_client_route_blocks
    return {}


def test_client_route_blocks():
    TestClient(app).get("/slow")  # during: test_client_route_blocks


@pytest.mark.asyncguard_allow_stall
@pytest.mark.asyncio
async def test_known_stall():
    time.sleep(0.3)


@pytest.mark.asyncguard_allow_stall(ms=100)
@pytest.mark.asyncio
async def test_known_stall_over_its_allowance():
    time.sleep(0.3)  # held: test_known_stall_over_its_allowance
'''

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = ignore::DeprecationWarning
"""


def lines_marked(mark: str) -> dict[str, int]:
    return {line.rpartition(mark)[2].strip(): number for number, line in enumerate(GUARDED.splitlines(), start=1)
            if mark in line}


def failure_texts(output: str) -> dict[str, str]:
    """Each failed test's section of pytest's report, by test name."""
    sections = re.split(r"^_{3,} (\S+) _{3,}$", output, flags=re.M)
    return {name.partition("[")[0]: text for name, text in zip(sections[1::2], sections[2::2])}


@pytest.fixture
def guarded(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_guarded=GUARDED)
    return pytester


def test_a_blocked_loop_fails_its_test_naming_the_line_and_awaiting_passes(guarded):
    result = guarded.runpytest_subprocess("-p", "asyncguard.pytest_plugin", "--asyncguard-max-stall-ms", "100")
    result.assert_outcomes(failed=5, passed=2)
    output = result.stdout.str()
    failures = failure_texts(output)
    assert set(failures) == {"test_sleeps", "test_spins", "test_anyio_sleeps", "test_client_route_blocks",
                             "test_known_stall_over_its_allowance"}
    for test, line in lines_marked("# held:").items():
        assert re.search(rf"held \d+ ms \(limit 100 ms\) by test_guarded.py:{line} in ", failures[test]), test
    spinning = {number for number, text in enumerate(GUARDED.splitlines(), start=1) if text.endswith("# spin")}
    spun = re.search(r"by test_guarded.py:(\d+) in spin\n", failures["test_spins"])
    assert spun and int(spun.group(1)) in spinning, failures["test_spins"]
    caller = lines_marked("# caller:")["test_spins"]
    assert f"test_guarded.py:{caller} in test_spins" in failures["test_spins"]  # the stack goes through the test
    portal = failures["test_client_route_blocks"]
    assert "in the loop of thread asyncio-portal" in portal
    assert f"while the test was at test_guarded.py:{lines_marked('# during:')['test_client_route_blocks']}" in portal


def test_the_guard_is_off_without_a_limit(guarded):
    guarded.runpytest_subprocess().assert_outcomes(passed=7)


def test_the_limit_can_come_from_the_ini_file_and_a_bad_one_is_a_usage_error(guarded):
    guarded.makeini(INI + "asyncguard_max_stall_ms = 100\n")
    guarded.runpytest_subprocess("-k", "sleeps and not anyio").assert_outcomes(failed=1, deselected=6)
    guarded.makeini(INI + "asyncguard_max_stall_ms = soon\n")
    result = guarded.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "asyncguard_max_stall_ms = 'soon': expected a number of milliseconds" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    result = guarded.runpytest_subprocess("--asyncguard-max-stall-ms", "-5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--asyncguard-max-stall-ms -5: expected a positive number of milliseconds" in result.stderr.str()


LIFETIMES = '''import asyncio
import gc
import time
import weakref

import pytest
import pytest_asyncio

held = []


class Thing:
    pass


@pytest.mark.asyncguard_allow_stall
@pytest.mark.asyncio
async def test_a_known_stall_keeps_nothing_alive():
    thing = Thing()
    held.append(weakref.ref(thing))
    time.sleep(0.05)


def test_the_next_test_sees_it_collected():
    gc.collect()
    assert held[0]() is None


@pytest_asyncio.fixture
async def slow_start():
    time.sleep(0.3)  # held: fixture
    yield


@pytest.mark.asyncio
async def test_a_fixtures_stall_fails_the_test_not_its_setup(slow_start):
    await asyncio.sleep(0)
'''


def test_the_guard_keeps_no_frame_alive_and_blames_a_fixtures_stall_on_its_test(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_lifetimes=LIFETIMES)
    result = pytester.runpytest_subprocess("--asyncguard-max-stall-ms", "20")
    result.assert_outcomes(passed=2, failed=1, errors=0)
    line = next(number for number, text in enumerate(LIFETIMES.splitlines(), 1) if "# held: fixture" in text)
    assert f"by test_lifetimes.py:{line} in slow_start" in result.stdout.str()


def test_a_bad_allowance_is_a_usage_error_before_any_test_runs(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_marked='''import pytest


def test_first():
    pass


@pytest.mark.asyncguard_allow_stall(ms="lots")
def test_marked():
    pass
''')
    result = pytester.runpytest_subprocess("--asyncguard-max-stall-ms", "100")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "expected milliseconds" in result.stderr.str()
    assert "test_first PASSED" not in result.stdout.str() and "1 passed" not in result.stdout.str()
