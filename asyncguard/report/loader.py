"""Reading a results file for a page: a BenchResults every page can render, or a ValueError saying in one line
where the file is not one.

Before the bench's own reading (`BenchResults.from_json`), the file is checked against the results' annotations
(pydantic, strict: a string or `true` where a number belongs is refused, never coerced; a null stands only for a
float, the bench's way of saving one that was not finite, or where None is allowed), and the free-form parts a page
formats (`scenario.load`, `provenance.git`) against what the page reads of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from typing_extensions import Required, TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from asyncguard.bench.results import READABLE_VERSIONS, BenchResults

LONGEST_INTEGER = 18
"""Digits of the longest integer read (a 64-bit count): a longer one is no count, line or port, and one past a
float's range would break the arithmetic of the page."""


class ShownLoad(TypedDict, total=False):
    rate: float | None
    bystander_interval: float


class ShownScenario(TypedDict, total=False):
    load: ShownLoad


class ShownGit(TypedDict, total=False):
    commit: str | None


class ShownProvenance(TypedDict, total=False):
    git: ShownGit


class ShownDocument(TypedDict, total=False):
    """What the pages read of a results file outside its typed fields, and the version that says how to read it."""

    schema_version: Required[int]
    scenario: ShownScenario
    provenance: ShownProvenance


DOCUMENT = TypeAdapter(ShownDocument)
RESULTS = TypeAdapter(BenchResults)


def read_results(path: Path) -> BenchResults:
    """Raises OSError when the file cannot be read, ValueError when it is not results a page can show."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text, parse_int=bounded_integer)
    except RecursionError:
        raise ValueError("nested too deeply to be a results file") from None
    try:
        version = DOCUMENT.validate_python(data, strict=True)["schema_version"]
    except ValidationError as error:
        raise ValueError(first_problem(error.errors(include_url=False))) from None
    if version not in READABLE_VERSIONS:
        raise ValueError(f"results schema {version} is not one of {READABLE_VERSIONS}")
    problems = type_problems(text)
    if problems:
        raise ValueError(first_problem(problems))
    try:  # a key no field has gets past the checks above, not past the classes
        return BenchResults.from_json(data)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(str(error)) from None


def type_problems(text: str) -> list[dict]:
    """Where the results' values are not of their annotated types. A null for a float is none: the bench saves a
    number that was not finite so, and reads it back as NaN (a page shows `nan`)."""
    try:
        RESULTS.validate_json(text, strict=True)  # strict builds dataclasses from JSON, not from parsed dicts
    except ValidationError as error:
        return [problem for problem in error.errors(include_url=False)
                if not (problem["type"] == "float_type" and problem["input"] is None)]
    return []


def bounded_integer(digits: str) -> int:
    if len(digits.lstrip("-")) > LONGEST_INTEGER:
        raise ValueError(f"the integer {digits[:13]}… is too large for a results file")
    return int(digits)


def first_problem(problems: list[dict]) -> str:
    """`runs.0.rps: Input should be a valid number, found "fast" (and 2 more problems)`."""
    problem, more = problems[0], len(problems) - 1
    where = ".".join(map(str, problem["loc"])) or "the document"
    return (f"{where}: {problem['msg']}, found {json_kind(problem['input'])}"
            + (f" (and {more} more problem{'s' * (more != 1)})" if more else ""))


def json_kind(value) -> str:
    """A found value as JSON names it: a scalar as written (shortened), a container by its kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    written = json.dumps(value)
    return written if len(written) <= 40 else f"{written[:39]}…"
