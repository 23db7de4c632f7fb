"""The load generator: Locust as a library, in a process of its own (`python -m asyncguard.bench.loadgen`).

Locust patches the standard library with gevent when imported, so it never runs inside the harness's process.
This process reads a JSON job on stdin, drives Locust users at the target for warm-up + duration seconds, and
writes its tallies to stdout as JSON (asyncguard.bench.tally): for each request name and second, HDR histograms of
latency and the counts of answers, so its memory does not grow with the requests.

At the end users stop sending and the requests in flight are waited for (each fails by itself after the
timeout); one still unanswered when the users are stopped is recorded as a timeout: every request sent is a sample.

With `"workers": N` it is a Locust master on 127.0.0.1 with N worker processes (`--worker`); each worker keeps
its own tallies, tells the master once its last requests are answered, and hands them over in a file when the
master stops the test.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from asyncguard.lifetime import die_with_parent
from asyncguard.bench.manifest import answered_as_expected
from asyncguard.bench.results import BYSTANDER
from asyncguard.bench.tally import Tallies, milliseconds

BACKOFF_FIRST, BACKOFF_LONGEST = 0.01, 0.25
"""Seconds a user waits before it reconnects after a failed request, doubling while the failures last."""
IN_FLIGHT_AT_END = "Timeout: no answer when the run ended"
DRAINED = "asyncguard_drained"
"""The message a worker sends its master once its users stopped and their last requests are answered."""


class Recorder:
    """What the users of one process share: their samples, the requests in flight, when to stop sending, and under
    a constant rate the schedule of intended send times."""

    def __init__(self) -> None:
        self.tallies = Tallies()
        """Every answer, by name and second (`origin` set when the load starts: the end of its warm-up)."""
        self.in_flight: dict[object, tuple[str, float]] = {}
        """Per user: the name of its request and when it was due (perf_counter), until it is answered or fails."""
        self.stop_at = math.inf
        """Wall time after which no user sends a new request: the load is over, the last answers drain."""
        self.due = None
        """Under `--rate`: a gevent queue of the send times the schedule has reached (`schedule`), the oldest first;
        a user takes one before each request. None for the closed loop."""
        self.dropped = 0
        """Send times no user was free to take before the load ended."""

    def schedule(self, rate: float) -> None:
        """The open model: a request is due every 1/`rate` seconds, whether or not the last ones were answered
        (wrk2's and k6's arrival rate). A due time waits in the queue until a user is free, and that user's
        latency is counted from it: a stalled server's queue is the latency its clients would see, not hidden by
        requests that were never sent (coordinated omission)."""
        import gevent

        start, sent = time.perf_counter(), 0
        until = start + (self.stop_at - time.time())
        while (due := start + sent / rate) < until:
            gevent.sleep(max(0.0, due - time.perf_counter()))
            self.due.put(due)
            sent += 1

    def count_dropped(self) -> int:
        """Send times still waiting for a user when the load ended, and those taken too late to be sent."""
        return self.dropped + (self.due.qsize() if self.due is not None else 0)

    def drain(self, timeout: float) -> None:
        """Wait until the requests in flight are answered (each fails by itself after `timeout`)."""
        import gevent

        deadline = time.time() + timeout + 1
        while self.in_flight and time.time() < deadline:
            gevent.sleep(0.01)

    def record_in_flight(self) -> None:
        """Requests its killed users never saw answered, as timeouts: every request sent is a sample."""
        now, clock = time.time(), time.perf_counter()
        for name, due in self.in_flight.values():
            self.tallies.record(name, self.counted_at(now, (clock - due) * 1000), (clock - due) * 1000, 0,
                                IN_FLIGHT_AT_END)
        self.in_flight.clear()

    def counted_at(self, answered: float, latency_ms: float) -> float:
        """The wall time a request counts in: when it fell due under a rate, else when it was answered."""
        return answered - latency_ms / 1000 if self.due is not None else answered


def connect(job: dict):
    """A keep-alive client of the target, of one connection; a client whose request failed is closed for good."""
    from geventhttpclient import HTTPClient
    from geventhttpclient.url import URL

    target, timeout = URL(job["host"]), job.get("timeout", 30.0)
    return HTTPClient(target.host, target.port, concurrency=1, network_timeout=timeout, connection_timeout=timeout)


def build_environment(job: dict, recorder: Recorder):
    """The users of a locustfile when the job names one (`from_locustfile`), else the harness's own."""
    return from_locustfile(job, recorder) if job.get("locustfile") else own_users(job, recorder)


def from_locustfile(job: dict, recorder: Recorder):
    """A user's own Locust user classes (multi-step flows, their own waits), pointed at the target (load only ever
    goes to the server measured here), each request they make a sample through Locust's request event. Their
    requests still in flight when the load ends are not samples: their clients are Locust's, not the harness's."""
    from locust.env import Environment
    from locust.util.load_locustfile import load_locustfile

    user_classes = list(load_locustfile(job["locustfile"])[0].values())
    for user_class in user_classes:
        user_class.host = job["host"]
    environment = Environment(user_classes=user_classes)

    def on_request(request_type, name, response_time, response=None, exception=None, **kwargs) -> None:
        if time.time() > recorder.stop_at:  # the load is over: what its users still do is not measured
            return
        status = getattr(response, "status_code", 0) or 0
        failure = None if exception is None else describe_failure(exception)
        recorder.tallies.record(f"{request_type} {name}", time.time(), response_time, status, failure)

    environment.events.request.add_listener(on_request)
    return environment


def own_users(job: dict, recorder: Recorder):
    """Locust users, each with its own keep-alive connection (geventhttpclient, the client FastHttpUser is built
    on), timing every request themselves. Locust's request event and statistics are left out of the hot path:
    with them the generator, not the app, was the limit (about 60% of wrk's rate here; without, above wrk's).
    A request that fails with an error (not a status) costs the connection: the user opens a new one after a short
    back-off, and goes on.
    """
    import gevent
    from locust import User, constant

    rate = job.get("rate")
    if rate:
        from gevent.queue import Queue

        recorder.due = Queue()

    def make_task(endpoint: dict):
        method, path, name = endpoint["method"], endpoint["path"], endpoint["name"]
        expected = endpoint.get("status")
        headers, body = endpoint.get("headers") or {}, (endpoint.get("body") or "").encode()

        def request(user) -> None:
            due = recorder.due.get() if recorder.due is not None and time.time() < recorder.stop_at else None
            if time.time() >= recorder.stop_at:
                if due is not None:
                    recorder.dropped += 1
                gevent.sleep(1.0)  # the load is over: no new request, only waiting to be stopped
                return
            started = time.perf_counter()
            scheduled, due = due is not None, started if due is None else due
            recorder.in_flight[user] = (name, due)
            try:
                response = user.http.request(method, path, body=body, headers=headers)
                response.read()
                status = response.status_code
                failure = None if answered_as_expected(status, expected) else f"HTTP {status}"
            except Exception as error:  # every failure is a sample, never a crashed user
                status, failure = 0, describe_failure(error)
            del recorder.in_flight[user]
            answered = time.perf_counter()
            latency = (answered - due) * 1000
            recorder.tallies.record(name, recorder.counted_at(time.time(), latency), latency, status, failure,
                                    (answered - started) * 1000 if scheduled else None)
            if status == 0:
                user.reconnect()
            else:
                user.backoff = 0.0
        return request

    class Visitor(User):
        wait_time = constant(0)  # under a rate, the schedule paces the users (`Recorder.schedule`)
        tasks = {make_task(endpoint): endpoint.get("weight", 1) for endpoint in job["endpoints"]}

        def on_start(self) -> None:
            self.http = connect(job)
            self.backoff = 0.0

        def reconnect(self) -> None:
            """A new client, after a wait that grows while the failures last (a refused connection fails at once:
            never spin)."""
            self.http.close()
            self.backoff = min(BACKOFF_LONGEST, max(BACKOFF_FIRST, self.backoff * 2))
            gevent.sleep(self.backoff)
            self.http = connect(job)

        def on_stop(self) -> None:
            self.http.close()

    from locust.env import Environment

    return Environment(user_classes=[Visitor])


def probe_bystander(job: dict, tallies: Tallies, end: float) -> None:
    """Another client of the same server: one request every `interval` seconds on its own connection, recorded
    under the name "bystander". A blocked loop makes every request wait, not only the flawed ones; this is the
    latency a health check or any other user sees meanwhile.
    """
    import gevent

    bystander = job["bystander"]
    http = connect(job)
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
                failure = None if answered_as_expected(status, bystander.get("status")) else f"HTTP {status}"
            except Exception as error:  # a sample like any other, never a crashed probe
                status, failure = 0, describe_failure(error)
                http.close()
                http = connect(job)
            tallies.record(BYSTANDER, time.time(), (time.perf_counter() - started) * 1000, status, failure)
    finally:
        http.close()


def describe_failure(exception: BaseException) -> str:
    return f"{type(exception).__name__}: {exception}"[:200]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_job(job: dict) -> dict:
    import gevent

    recorder = Recorder()
    tallies = recorder.tallies
    environment = build_environment(job, recorder)
    workers, timeout = job.get("workers", 0), job.get("timeout", 30.0)
    worker_processes, sample_files = [], []
    try:
        if workers:
            runner = environment.create_master_runner("127.0.0.1", job["master_port"])
            drained: set[str] = set()
            runner.register_message(DRAINED, lambda environment, msg, **kwargs: drained.add(msg.node_id))
            for index in range(workers):
                sample_files.append(Path(job["scratch"]) / f"worker-{index}.json")
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
        end = started + job["warmup"] + job["duration"]
        recorder.stop_at, tallies.origin = end, started + job["warmup"]
        runner.start(job["users"], spawn_rate=job.get("spawn_rate", job["users"]))
        pacer = gevent.spawn(recorder.schedule, job["rate"]) if recorder.due is not None and not workers else None
        probe = gevent.spawn(probe_bystander, job, tallies, end) if job.get("bystander") else None
        while time.time() < end:
            user_counts.append([round(time.time(), 3), runner.user_count])
            gevent.sleep(min(1.0, max(0.0, end - time.time())))
            report_progress(tallies, started, job["warmup"])
        cpu = cpu_seconds() - cpu_before
        peak_cpu = cpu / max(time.time() - started, 1e-9)
        if workers:
            wait_until = time.time() + timeout + 2
            while len(drained) < workers and time.time() < wait_until:
                gevent.sleep(0.01)
        else:
            recorder.drain(timeout)
        dropped = recorder.count_dropped()
        if pacer is not None:
            pacer.kill()
        runner.quit()
        recorder.record_in_flight()
        if probe is not None:
            probe.join(timeout=timeout)
        wall = time.time() - started
        for process, sample_file in zip(worker_processes, sample_files):
            process.wait(timeout=30)
            handed_over = json.loads(sample_file.read_text())
            tallies.merge(handed_over["tallies"])
            dropped += handed_over["dropped"]
            cpu += handed_over["cpu"]
            peak_cpu = max(peak_cpu, handed_over["cpu_share"])
    finally:  # a failed run leaves no worker behind (the harness removes their samples files)
        for process in worker_processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return {"started": started, "measure_from": started + job["warmup"], "ended": started + wall,
            "tallies": tallies.to_json(), "users": user_counts, "generator_cpu": round(cpu / max(wall, 1e-9), 3),
            "generator_peak_cpu": round(peak_cpu, 3), "workers": workers, "dropped": dropped}


def start_worker(job: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "asyncguard.bench.loadgen", "--worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                               preexec_fn=die_with_parent())
    process.stdin.write(json.dumps(job))
    process.stdin.close()
    return process


def run_worker(job: dict) -> None:
    """Connect to the master, run its users until their load is over and their last requests are answered, say
    so, and once the master quits hand the samples over in a file."""
    import gevent

    recorder = Recorder()
    environment = build_environment(job, recorder)
    runner = environment.create_worker_runner("127.0.0.1", job["master_port"])
    before = {"cpu": cpu_seconds(), "wall": time.time()}
    share, dropped = [], []

    def load_then_drain() -> None:
        gevent.sleep(max(0.0, recorder.stop_at - time.time()))
        share.append((cpu_seconds() - before["cpu"]) / max(time.time() - before["wall"], 1e-9))
        dropped.append(recorder.count_dropped())
        recorder.drain(job.get("timeout", 30.0))
        runner.send_message(DRAINED)

    def on_test_start(**kwargs) -> None:
        before.update(cpu=cpu_seconds(), wall=time.time())
        recorder.stop_at = before["wall"] + job["warmup"] + job["duration"]
        recorder.tallies.origin = before["wall"] + job["warmup"]
        if recorder.due is not None:  # each worker keeps its share of the rate
            gevent.spawn(recorder.schedule, job["rate"] / job["workers"])
        gevent.spawn(load_then_drain)

    environment.events.test_start.add_listener(on_test_start)
    runner.greenlet.join()
    recorder.record_in_flight()
    handed_over = {"tallies": recorder.tallies.to_json(), "cpu": cpu_seconds() - before["cpu"],
                   "cpu_share": share[0] if share
                   else 0.0, "dropped": dropped[0] if dropped else 0}
    Path(job["samples_file"]).write_text(json.dumps(handed_over))


def report_progress(tallies: Tallies, started: float, warmup: float) -> None:
    """One JSON line a second on stderr (`{"elapsed", "rps", "p99", "warmup"}`) for the harness's live display:
    the last whole second's answers (a master's own tallies stay empty: its workers hand theirs over at the end)."""
    now = time.time()
    last = tallies.recent(math.floor(now - tallies.origin) - 1, skip=BYSTANDER)
    p99 = milliseconds(last.latency, 99) if last.ok else None
    elapsed = now - started
    print(json.dumps({"elapsed": round(elapsed, 1), "rps": last.ok, "p99": p99, "warmup": elapsed < warmup}),
          file=sys.stderr, flush=True)


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
