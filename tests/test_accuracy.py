"""The accuracy scorer: findings matched one to one to blind labels, misses and false positives kept by name."""

from __future__ import annotations

from asyncguard.lint.measure.accuracy import score


def finding(path: str, line: int, code: str = "AG106") -> dict:
    return {"path": path, "line": line, "code": code, "message": "m"}


def test_each_label_takes_one_finding_on_or_next_to_its_line_and_the_rest_are_sorted_by_what_labels_say():
    labels = {"repo": "o/n", "commit": "c" * 40,
              "sites": [{"path": "a.py", "line": 10, "confidence": "sure"},
                        {"path": "a.py", "line": 11, "confidence": "likely"},
                        {"path": "b.py", "line": 5, "confidence": "sure"}],
              "negatives": [{"path": "a.py", "line": 30}]}
    findings = [finding("a.py", 9), finding("a.py", 11), finding("a.py", 30), finding("c.py", 1)]
    result = score(labels, findings, exit_status=1)
    assert (result.sites, result.sure_sites, result.found, result.found_sure) == (3, 2, 2, 1)
    assert result.missed == [{"path": "b.py", "line": 5, "confidence": "sure"}]
    assert [f["path"] for f in result.false_on_negatives] == ["a.py"] and result.on_negatives == 1
    assert [(f["path"], f["line"]) for f in result.unjudged] == [("c.py", 1)]


def test_a_finding_on_a_labels_own_line_is_never_given_to_its_neighbour():
    labels = {"repo": "o/n", "commit": "c" * 40, "sites": [{"path": "a.py", "line": 36}, {"path": "a.py", "line": 37}]}
    result = score(labels, [finding("a.py", 37)], exit_status=1)
    assert result.missed == [{"path": "a.py", "line": 36}]


def test_a_file_the_tool_could_not_check_is_a_notice_not_a_finding():
    labels = {"repo": "o/n", "commit": "c" * 40, "sites": [{"path": "a.py", "line": 3}]}
    result = score(labels, [finding("a.py", 3), finding("b.py", 1, "AG001"), finding("c.py", 1, "AG002")], 1)
    assert (result.found, result.findings, result.unlabelled) == (1, 1, 0)
    assert [f["code"] for f in result.notices] == ["AG001", "AG002"]
