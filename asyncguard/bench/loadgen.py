"""The load generator: Locust as a library, in a process of its own (`python -m asyncguard.bench.loadgen`).

Locust patches the standard library with gevent when imported, so it never runs inside the harness's process.
This process reads a JSON job on stdin, drives Locust users at the target for warm-up + duration seconds, and
writes every request's full-resolution sample to stdout as JSON: Locust's own statistics round response times to
two significant figures, which is too coarse for a p99 or a p99.9.

With `"workers": N` it is a Locust master on 127.0.0.1 with N worker processes (`--worker`); each worker keeps
its own samples and hands them over in a file when the master stops the test.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asyncguard.bench.results import BYSTANDER


def build_environment(job: dict, samples: list[list]):
    """Locust users, each with its own keep-alive connection (geventhttpclient, the client FastHttpUser is built
    on), timing every request themselves. Locust's request event and statistics are left out of the hot path:
    with them the generator, not the app, was the limit (about 60% of wrk's rate here; without, above wrk's).
    """
    import gevent
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL
    from locust import User, constant, constant_throughput

    users, rate, timeout = job["users"], job.get("rate"), job.get("timeout", 30.0)
    target = URL(job["host"])

    def make_task(endpoint: dict):
        method, path, name = endpoint["method"], endpoint["path"], endpoint["name"]
        expected = endpoint.get("status", 200)

        def request(user) -> None:
            started = time.perf_counter()
            try:
                response = user.http.request(method, path)
                response.read()
                status = response.status_code
                failure = None if status == expected else f"HTTP {status}"
            except Exception as error:  # every failure is a sample, never a crashed user
                status, failure = 0, describe_failure(error)
                user.http.close()
                gevent.sleep(0.001)  # a refused connection fails at once: never spin without yielding
            samples.append([time.time(), name, (time.perf_counter() - started) * 1000, status, failure])
        return request

    class Visitor(User):
        wait_time = constant_throughput(rate / users) if rate else constant(0)
        tasks = {make_task(endpoint): endpoint.get("weight", 1) for endpoint in job["endpoints"]}

        def on_start(self) -> None:
            self.http = HTTPClient(target.host, target.port, concurrency=1, network_timeout=timeout,
                                   connection_timeout=timeout)

        def on_stop(self) -> None:
            self.http.close()

    from locust.env import Environment

    return Environment(user_classes=[Visitor])


def probe_bystander(job: dict, samples: list[list], end: float) -> None:
    """Another client of the same server: one request every `interval` seconds on its own connection, recorded
    under the name "bystander". A blocked loop makes every request wait, not only the flawed ones; this is the
    latency a health check or any other user sees meanwhile.
    """
    import gevent
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL

    bystander, timeout = job["bystander"], job.get("timeout", 30.0)
    target = URL(job["host"])
    http = HTTPClient(target.host, target.port, concurrency=1, network_timeout=timeout, connection_timeout=timeout)
    next_request = time.time()
    try:
        while next_request < end:
            gevent.sleep(max(0.0, next_request - time.time()))
            next_request += bystander["interval"]
            started = time.perf_counter()
            try:
                response = http.request(bystander["method"], bystander["path"])
                response.read()
                status = response.status_code
                failure = None if status == bystander.get("status", 200) else f"HTTP {status}"
            except Exception as error:  # a sample like any other, never a crashed probe
                status, failure = 0, describe_failure(error)
                http.close()
            samples.append([time.time(), BYSTANDER, (time.perf_counter() - started) * 1000, status, failure])
    finally:
        http.close()


def describe_failure(exception: BaseException) -> str:
    return f"{type(exception).__name__}: {exception}"[:200]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_job(job: dict) -> dict:
    import gevent

    samples: list[list] = []
    environment = build_environment(job, samples)
    workers = job.get("workers", 0)
    worker_processes, sample_files = [], []
    scratch = tempfile.TemporaryDirectory(prefix="asyncguard-workers-")
    try:
        if workers:
            runner = environment.create_master_runner("127.0.0.1", job["master_port"])
            for index in range(workers):
                sample_files.append(Path(scratch.name) / f"worker-{index}.json")
                worker_processes.append(start_worker({**job, "samples_file": str(sample_files[-1])}))
            deadline = time.time() + 30
            while runner.worker_count < workers and time.time() < deadline:
                gevent.sleep(0.1)
            if runner.worker_count < workers:
                raise RuntimeError(f"only {runner.worker_count} of {workers} workers connected")
        else:
            runner = environment.create_local_runner()
        user_counts: list[list] = []
        started = time.time()
        cpu_before = cpu_seconds()
        runner.start(job["users"], spawn_rate=job.get("spawn_rate", job["users"]))
        end = started + job["warmup"] + job["duration"]
        probe = gevent.spawn(probe_bystander, job, samples, end) if job.get("bystander") else None
        seen = 0
        while time.time() < end:
            user_counts.append([round(time.time(), 3), runner.user_count])
            gevent.sleep(min(1.0, max(0.0, end - time.time())))
            seen = report_progress(samples, seen, started, job["warmup"])
        cpu = cpu_seconds() - cpu_before
        runner.quit()
        if probe is not None:
            probe.join(timeout=job.get("timeout", 30.0))
        wall = time.time() - started
        for process, sample_file in zip(worker_processes, sample_files):
            process.wait(timeout=30)
            handed_over = json.loads(sample_file.read_text())
            samples.extend(handed_over["samples"])
            cpu += handed_over["cpu"]
    finally:  # a failed run leaves neither a worker nor its samples file behind
        for process in worker_processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        scratch.cleanup()
    samples.sort(key=lambda sample: sample[0])
    return {"started": started, "measure_from": started + job["warmup"], "ended": started + wall,
            "samples": samples, "users": user_counts, "generator_cpu": round(cpu / max(wall, 1e-9), 3),
            "workers": workers}


def start_worker(job: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "asyncguard.bench.loadgen", "--worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    process.stdin.write(json.dumps(job))
    process.stdin.close()
    return process


def run_worker(job: dict) -> None:
    """Connect to the master, run what it says until it quits, then hand the samples over in a file."""
    samples: list[list] = []
    environment = build_environment(job, samples)
    runner = environment.create_worker_runner("127.0.0.1", job["master_port"])
    before = cpu_seconds()
    runner.greenlet.join()
    Path(job["samples_file"]).write_text(json.dumps({"samples": samples, "cpu": cpu_seconds() - before}))


def report_progress(samples: list[list], seen: int, started: float, warmup: float) -> int:
    """One JSON line a second on stderr (`{"elapsed", "rps", "p99", "warmup"}`) for the harness's live display."""
    recent = sorted(sample[2] for sample in samples[seen:] if sample[1] != BYSTANDER)
    elapsed = time.time() - started
    rps = len(recent)  # a master's own list stays empty: its workers hand their samples over at the end
    p99 = recent[min(len(recent) - 1, int(len(recent) * 0.99))] if recent else None
    print(json.dumps({"elapsed": round(elapsed, 1), "rps": rps, "p99": p99, "warmup": elapsed < warmup}),
          file=sys.stderr, flush=True)
    return len(samples)


def main() -> int:
    job = json.load(sys.stdin)
    if "--worker" in sys.argv:
        run_worker(job)
        return 0
    json.dump(run_job(job), sys.stdout)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH_CHECK", "1")
    raise SystemExit(main())
