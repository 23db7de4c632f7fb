"""Scenario files: an app and a weighted mix of endpoints, measured together under one load.

    app = "myservice.main:app"
    app_dir = "src"                 # optional, relative to the scenario file
    health = "/health"              # optional: the path answered once the app is ready
    users = 50                      # optional; the command line wins
    rate = 400                      # optional: constant arrival rate instead of a closed loop
    warmup = 2
    duration = 10

    [env]                           # optional environment of the server
    DATABASE_URL = "sqlite:///bench.db"

    [[endpoint]]
    method = "GET"
    path = "/users/1"
    weight = 3                      # share of the requests
    status = 200                    # expected status, checked before timing
    keys = ["id", "name"]           # optional: JSON keys the answer must have
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from asyncguard.bench.harness import Target
from asyncguard.bench.manifest import Endpoint, Expectation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOAD_KEYS = ("users", "rate", "warmup", "duration")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; reported in one line."""


@dataclass(frozen=True)
class Scenario:
    targets: tuple[Target, ...]
    load: dict
    """Load settings the file gives (`users`, `rate`, `warmup`, `duration`)."""


def load_scenario(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"cannot read scenario {path}: {error}") from None
    if "app" not in data or not data.get("endpoint"):
        raise ScenarioError(f"scenario {path} needs `app` and at least one [[endpoint]]")
    app_dir = (path.parent / data["app_dir"]).resolve() if "app_dir" in data else None
    env = {str(k): str(v) for k, v in data.get("env", {}).items()}
    targets = []
    for entry in data["endpoint"]:
        try:
            endpoint = Endpoint(entry["method"].upper(), entry["path"])
        except (KeyError, AttributeError):
            raise ScenarioError(f"scenario {path}: every [[endpoint]] needs `method` and `path`") from None
        expect = Expectation(status=int(entry.get("status", 200)), keys=tuple(entry.get("keys", ())),
                             contains=entry.get("contains"))
        targets.append(Target("scenario", "target", data["app"], endpoint, expect, app_dir, env,
                              health_path=data.get("health", endpoint.path), weight=int(entry.get("weight", 1))))
    return Scenario(tuple(targets), {key: data[key] for key in LOAD_KEYS if key in data})
