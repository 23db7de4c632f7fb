"""The load generator: Locust as a library, in a process of its own (`python -m asyncguard.bench.loadgen`).

Locust patches the standard library with gevent when imported, so it never runs inside the harness's process.
This process reads a JSON job on stdin, drives `FastHttpUser`s at the target for warm-up + duration seconds, and
writes every request's full-resolution sample to stdout as JSON: Locust's own statistics round response times to
two significant figures, which is too coarse for a p99 or a p99.9.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def run_job(job: dict) -> dict:
    import gevent
    from locust import FastHttpUser, constant, constant_throughput, task
    from locust.env import Environment

    endpoints = job["endpoints"]
    users = job["users"]
    rate = job.get("rate")
    samples: list[list] = []
    user_counts: list[list] = []

    def make_task(endpoint: dict):
        def request(user) -> None:
            with user.client.request(endpoint["method"], endpoint["path"], name=endpoint["name"],
                                     catch_response=True) as response:
                if response.status_code != endpoint.get("status", 200):
                    response.failure(f"HTTP {response.status_code}")
        return task(endpoint.get("weight", 1))(request)

    class Visitor(FastHttpUser):
        host = job["host"]
        wait_time = constant_throughput(rate / users) if rate else constant(0)
        network_timeout = job.get("timeout", 30.0)
        connection_timeout = job.get("timeout", 30.0)
        tasks = [make_task(endpoint) for endpoint in endpoints]

    def on_request(request_type, name, response_time, response_length, exception=None, response=None, **_):
        status = getattr(response, "status_code", 0) or 0
        samples.append([round(time.time(), 4), name, round(response_time, 3), status,
                        None if exception is None else str(exception)[:200]])

    environment = Environment(user_classes=[Visitor], events=None)
    environment.events.request.add_listener(on_request)
    runner = environment.create_local_runner()
    started = time.time()
    runner.start(users, spawn_rate=job.get("spawn_rate", users))
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    end = started + job["warmup"] + job["duration"]
    while time.time() < end:
        user_counts.append([round(time.time(), 3), runner.user_count])
        gevent.sleep(min(1.0, max(0.0, end - time.time())))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    runner.quit()
    wall = time.time() - started
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "started": started,
        "measure_from": started + job["warmup"],
        "ended": started + wall,
        "samples": samples,
        "users": user_counts,
        "generator_cpu": round(cpu / max(wall, 1e-9), 3),
    }


def main() -> int:
    job = json.load(sys.stdin)
    json.dump(run_job(job), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
