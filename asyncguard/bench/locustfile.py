"""A plain locustfile with the harness's user, for Locust's own distributed mode across machines.

    ASYNCGUARD_ENDPOINTS="GET /fixed/price/sku-042,GET /fixed/sleep" \
        locust -f asyncguard/bench/locustfile.py --master --headless --expect-workers 2 -u 100 -t 60s \
        --host http://SERVICE:8000
    ASYNCGUARD_ENDPOINTS="..." locust -f asyncguard/bench/locustfile.py --worker --master-host MASTER

Use it for targets your own machines serve; `asyncguard bench --workers N` runs master and workers locally.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task


def _endpoint_task(method: str, path: str):
    def request(user) -> None:
        user.client.request(method, path, name=f"{method} {path}")
    return task(request)


class Visitor(FastHttpUser):
    wait_time = constant(0)
    tasks = [
        _endpoint_task(*spec.strip().split(None, 1))
        for spec in os.environ.get("ASYNCGUARD_ENDPOINTS", "GET /").split(",") if spec.strip()
    ]
