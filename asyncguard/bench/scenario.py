"""Scenario files: an app and a weighted mix of endpoints, measured together under one load.

    app = "myservice.main:app"      # or `url = "http://127.0.0.1:8000"`, a server you run (`lag_file` below)
    app_dir = "src"                 # optional, relative to the scenario file
    health = "/health"              # optional: the path answered once the app is ready
    lag_file = "/tmp/lag.txt"       # with `url`: where its `asyncguard.bench.lag.measured` wrapper writes
    users = 50                      # optional; the command line wins
    rate = 400                      # optional: constant arrival rate instead of a closed loop
    warmup = 2
    duration = 10
    headers = { Authorization = "Bearer ${API_TOKEN}" }   # optional: sent with every endpoint's requests

    [env]                           # optional environment of the server
    DATABASE_URL = "sqlite:///bench.db"

    [[endpoint]]
    method = "GET"
    path = "/users/1"
    query = { fields = "id,name" }  # optional: appended to the path, URL-encoded
    weight = 3                      # share of the requests
    status = 200                    # expected status, checked before timing (default: any 2xx)
    keys = ["id", "name"]           # optional: JSON keys the answer must have

    [[endpoint]]
    method = "POST"
    path = "/orders"
    json = { item = "book", quantity = 2 }   # a JSON body; or `body = "..."` with `content_type = "..."`
    headers = { "Idempotency-Key" = "bench" }
    status = 201

`${NAME}` in any string value is the environment variable NAME (a secret stays out of the file); one that is not
set is an error. Unknown keys and values of the wrong type are errors naming the key.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from asyncguard.bench.harness import Target
from asyncguard.bench.manifest import Endpoint, Expectation
from asyncguard.bench.server import loopback_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOAD_KEYS = ("users", "rate", "warmup", "duration")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
QueryValue = Union[StrictStr, StrictInt, float, bool]
UNION_TAG = re.compile(r"str|int|float|bool|list\[.*\]")
"""The member of a union pydantic names in an error's location: not a key of the file."""


class ScenarioError(ValueError):
    """A scenario file that cannot be used; reported in one line."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class EndpointEntry(Strict):
    method: StrictStr
    path: StrictStr = Field(pattern=r"^/")
    query: dict[str, QueryValue | list[QueryValue]] = {}
    headers: dict[str, StrictStr] = {}
    json_body: Any = Field(default=None, alias="json")
    body: StrictStr | None = None
    content_type: StrictStr | None = None
    weight: StrictInt = Field(default=1, ge=1)
    status: StrictInt | None = Field(default=None, ge=100, le=599)
    keys: list[StrictStr] = []
    contains: StrictStr | None = None

    @model_validator(mode="after")
    def one_body(self) -> "EndpointEntry":
        if self.json_body is not None and self.body is not None:
            raise ValueError("give `json` or `body`, not both")
        if self.content_type is not None and self.body is None:
            raise ValueError("`content_type` goes with `body`")
        return self


class ScenarioFile(Strict):
    app: StrictStr | None = None
    url: StrictStr | None = None
    lag_file: StrictStr | None = None
    app_dir: StrictStr | None = None
    health: StrictStr | None = Field(default=None, pattern=r"^/")
    users: Any = None  # the load settings are checked as the command line's are (`cli.load_problem`)
    rate: Any = None
    warmup: Any = None
    duration: Any = None
    headers: dict[str, StrictStr] = {}
    env: dict[str, StrictStr | StrictInt | float | bool] = {}
    endpoint: list[EndpointEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def one_server(self) -> "ScenarioFile":
        if (self.app is None) == (self.url is None):
            raise ValueError("give `app` (a server asyncguard starts) or `url` (one you run), one of them")
        if self.lag_file is not None and self.url is None:
            raise ValueError("`lag_file` goes with `url`")
        return self


@dataclass(frozen=True)
class Scenario:
    targets: tuple[Target, ...]
    load: dict
    """Load settings the file gives (`users`, `rate`, `warmup`, `duration`)."""
    lag_file: Path | None = None
    """With `url`: where the server's lag wrapper writes (`asyncguard.bench.lag.measured`)."""


def load_scenario(path: Path) -> Scenario:
    try:
        data = expand(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"cannot read scenario {path}: {error}") from None
    except KeyError as unset:
        raise ScenarioError(f"scenario {path}: ${{{unset.args[0]}}} is not set in the environment") from None
    try:
        scenario = ScenarioFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"scenario {path}: {first_problem(error)}") from None
    try:
        url = loopback_url(scenario.url) if scenario.url is not None else None
    except ValueError as error:
        raise ScenarioError(f"scenario {path}: {str(error).replace('--url', '`url`')}") from None
    app_dir = (path.parent / scenario.app_dir).resolve() if scenario.app_dir is not None else None
    env = {key: str(value) for key, value in scenario.env.items()}
    targets = tuple(
        Target("scenario", "target", scenario.app or url, request_of(entry, scenario.headers),
               Expectation(status=entry.status, keys=tuple(entry.keys), contains=entry.contains), app_dir, env,
               health_path=scenario.health or entry.path, weight=entry.weight, url=url)
        for entry in scenario.endpoint)
    return Scenario(targets, {key: getattr(scenario, key) for key in LOAD_KEYS if getattr(scenario, key) is not None},
                    (path.parent / scenario.lag_file) if scenario.lag_file is not None else None)


def request_of(entry: EndpointEntry, shared_headers: dict[str, str]) -> Endpoint:
    """The request an endpoint entry describes: its query in the path, the file's headers under its own, and its
    body with the content type that says what it is."""
    headers = {**shared_headers, **entry.headers}
    body = None
    if entry.json_body is not None:
        body = json.dumps(entry.json_body)
        headers.setdefault("Content-Type", "application/json")
    elif entry.body is not None:
        body = entry.body
        headers.setdefault("Content-Type", entry.content_type or "application/octet-stream")
    path = entry.path
    if entry.query:
        path += ("&" if "?" in path else "?") + urlencode(entry.query, doseq=True)
    return Endpoint(entry.method.upper(), path, tuple(headers.items()), body)


def expand(value: Any) -> Any:
    """`${NAME}` in every string, from the environment (KeyError names one that is not set)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda match: os.environ[match.group(1)], value)
    if isinstance(value, dict):
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def first_problem(error: ValidationError) -> str:
    """Pydantic's first error as one line that names the key: "endpoint 2: unknown key `bdy`"."""
    problem = error.errors(include_url=False)[0]
    location, prefix = list(problem["loc"]), ""
    if location[:1] == ["endpoint"] and len(location) > 1 and isinstance(location[1], int):
        prefix, location = f"endpoint {location[1] + 1}: ", location[2:]
    key = ".".join(str(part) for part in location if not (isinstance(part, str) and UNION_TAG.fullmatch(part)))
    if problem["type"] == "extra_forbidden":
        return f"{prefix}unknown key `{key}`"
    if problem["type"] == "missing":
        return f"{prefix}`{key}` is missing"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{prefix}`{key}`: {message}" if key else f"{prefix}{message}"
