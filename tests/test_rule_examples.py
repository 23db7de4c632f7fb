"""Every rule's examples are its tests: flagged examples report exactly their marked lines, accepted ones nothing."""

from __future__ import annotations

import pytest

from asyncguard.lint.rule import all_rules
from conftest import expected_findings, reported

FLAGGED = [(rule, i, code) for rule in all_rules() for i, code in enumerate(rule.flagged)]
ACCEPTED = [(rule, i, code) for rule in all_rules() for i, code in enumerate(rule.accepted)]


@pytest.mark.parametrize("rule,index,code", FLAGGED, ids=[f"{r.code}-flagged-{i}" for r, i, _ in FLAGGED])
def test_flagged_example_reports_marked_lines(rule, index, code):
    expected = expected_findings(code)
    assert expected, "a flagged example must mark at least one line"
    assert {c for _, c in expected} == {rule.code}, "a rule's flagged example marks only that rule's code"
    assert reported(code, rule.example_config) == expected


@pytest.mark.parametrize("rule,index,code", ACCEPTED, ids=[f"{r.code}-accepted-{i}" for r, i, _ in ACCEPTED])
def test_accepted_example_reports_nothing(rule, index, code):
    assert reported(code, rule.example_config) == set()


@pytest.mark.parametrize("rule", all_rules(), ids=[r.code for r in all_rules()])
def test_rule_is_documented(rule):
    assert rule.code.startswith("AG") and len(rule.code) == 5
    assert rule.name == rule.name.lower() and " " not in rule.name
    assert rule.what_it_does() and rule.why
    if rule.category:  # rules that report calls show an example and its fix
        assert rule.flagged and rule.accepted


def test_codes_and_names_are_unique():
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)


def test_readme_rule_table_is_current():
    from asyncguard.lint.interface.docs import readme_table
    from conftest import ROOT

    assert readme_table() in (ROOT / "README.md").read_text(encoding="utf-8"), "run `make docs`"
