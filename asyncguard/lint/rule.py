"""The shape of a rule, and the registry that finds every rule module under `asyncguard.lint.rules`.

A rule carries everything about itself: code, kebab-case name, message, rationale and examples. The examples are
the documentation (`asyncguard rule AG101`, the README table) and the tests (`tests/test_rule_examples.py`): in a
flagged example, each line that must be reported ends with a comment naming the code (`time.sleep(1)  # AG101`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache
from typing import ClassVar


class Rule:
    """Base class: subclasses set the class attributes; the docstring says what the rule finds."""

    code: ClassVar[str]
    name: ClassVar[str]
    """Reads as "allow <name>" and describes the pattern, as ruff names rules."""
    category: ClassVar[str | None] = None
    """The knowledge category (`blocking_calls.toml`) this rule reports, if any."""
    message: ClassVar[str]
    """Template with `{call}` (qualified name) and `{context}` ("in path operation GET /x")."""
    why: ClassVar[str]
    """Why is this bad?"""
    flagged: ClassVar[list[str]] = []
    """Code the rule reports, expected findings marked inline."""
    accepted: ClassVar[list[str]] = []
    """Code the rule leaves alone; the first one is the "Use instead" of the docs."""
    example_config: ClassVar[dict] = {}
    """`[tool.asyncguard]` settings the examples need (for configurable rules)."""

    @classmethod
    def summary(cls) -> str:
        return inspect.getdoc(cls).split("\n\n")[0].replace("\n", " ")

    @classmethod
    def what_it_does(cls) -> str:
        return inspect.getdoc(cls) or ""


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class defined in a module of `asyncguard.lint.rules`, sorted by code."""
    from asyncguard.lint import rules as package

    found: list[type[Rule]] = []
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        found.extend(
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Rule) and obj is not Rule and obj.__module__ == module.__name__
        )
    return tuple(sorted(found, key=lambda rule: rule.code))


@lru_cache(maxsize=1)
def rules_by_code() -> dict[str, type[Rule]]:
    return {rule.code: rule for rule in all_rules()}


@lru_cache(maxsize=1)
def rules_by_category() -> dict[str, type[Rule]]:
    return {rule.category: rule for rule in all_rules() if rule.category}


def lookup(code_or_name: str) -> type[Rule] | None:
    """A rule by its code (`AG101`) or its name (`blocking-sleep-in-async-function`)."""
    wanted = code_or_name.strip()
    for rule in all_rules():
        if wanted.upper() == rule.code or wanted == rule.name:
            return rule
    return None
