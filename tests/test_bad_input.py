"""Bad input never crashes the checker: each file is checked or reported as AG001, and the run goes on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncguard.cli import main
from asyncguard.lint.engine.checker import check_source

SLEEP = "import time\n\nasync def f():\n    time.sleep(1)\n"


def check_dir(path: Path, capsys) -> tuple[int, list[str]]:
    code = main(["check", "-q", "--no-cache", str(path)])
    return code, capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name,content,expected", [
    ("syntax.py", b"async def f(:\n    pass\n", "AG001 file not checked: syntax error"),
    ("latin1.py", b"x = '\xe9'\nasync def f():\n    pass\n", "AG001 file not checked: cannot decode"),
    ("binary.py", b"\x00\x01\x02\xff\xfeasync", "AG001 file not checked: binary file"),
])
def test_unusable_files_are_reported_and_the_run_goes_on(tmp_path, capsys, name, content, expected):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "good.py").write_text(SLEEP)
    code, lines = check_dir(tmp_path, capsys)
    assert code == 1
    assert any(line.startswith(f"{tmp_path / name}:") and expected in line for line in lines), lines
    assert any("good.py:4:5: AG101" in line for line in lines)


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbf" + SLEEP.encode(),  # BOM
    SLEEP.replace("\n", "\r\n").encode(),  # CRLF
    b"# -*- coding: latin-1 -*-\nx = '\xe9'\n" + SLEEP.encode(),  # PEP 263 cookie
])
def test_encodings_and_line_endings_are_checked(tmp_path, capsys, content):
    (tmp_path / "app.py").write_bytes(content)
    code, lines = check_dir(tmp_path, capsys)
    assert code == 1 and len(lines) == 1 and "AG101" in lines[0], lines


@pytest.mark.parametrize("source", [
    "",
    "match command:\n    case [x, y]:\n        pass\n",
    "type Pair[T] = tuple[T, T]\n\nasync def f[T](x: T) -> T:\n    return x\n",
    "def g():\n    async def inner():\n        pass\n",
])
def test_newest_syntax_is_checked_without_findings(source):
    assert check_source(source) == []


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="Python 3.14 reads PEP 750 template strings")
def test_syntax_newer_than_the_interpreter_reads_is_not_passed_silently():
    """A coroutine this Python's `ast` cannot read, nor put in its own terms (a PEP 750 template string), is not
    checked: it says so."""
    [finding] = check_source('import time\n\nasync def f(name):\n    time.sleep(1)\n    return t"hello {name}"\n')
    assert finding.code == "AG001"
    assert "syntax newer than Python" in finding.message and "run asyncguard with a newer Python" in finding.message


@pytest.mark.parametrize("newer", [
    "f\"{'\\n'.join(items)}\"",  # PEP 701: a backslash in an f-string's expression
    'f"{", ".join(items)}"',  # PEP 701: the f-string's own quotes inside it
    'f"""\n{"\\n".join(items)}\n"""',  # over lines
])
def test_an_f_string_only_python_3_12_reads_does_not_hide_the_rest_of_the_file(newer):
    """The f-string is read as a plain string of the same extent: every other line is checked, where it stands."""
    source = f"import time\n\nasync def f(items):\n    label = {newer}\n    time.sleep(1)\n    return label\n"
    assert [(f.line, f.code) for f in check_source(source)] == [(source.splitlines().index("    time.sleep(1)") + 1,
                                                                 "AG101")]


def test_type_parameters_over_several_lines_are_read():
    source = ("import time\n\n\nclass Box[\n    T,\n]:\n    pass\n\n\nasync def f[\n    T: int,\n](x: T) -> T:\n"
              "    time.sleep(1)\n    return x\n")
    assert [(f.line, f.code) for f in check_source(source)] == [(13, "AG101")]


def test_new_syntax_does_not_hide_findings():
    source = "import time\n\nasync def f[T](x: T) -> T:\n    match x:\n        case 1:\n            time.sleep(1)\n"
    assert [(f.line, f.code) for f in check_source(source)] == [(6, "AG101")]


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's own temporary directories are its owner's only)."""
    directory = Path(tempfile.mkdtemp(prefix="asyncguard-check-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def check_unprivileged(cwd: Path, *paths: str) -> subprocess.CompletedProcess:
    """`asyncguard check` as a user the permissions apply to: as root, the user nobody (root reads everything)."""
    command = [sys.executable, "-m", "asyncguard", "check", "-q", "--no-cache", *paths]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root, and no setpriv to drop privileges with")
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_unreadable_file(shared_dir):
    (shared_dir / "secret.py").write_text(SLEEP)
    (shared_dir / "secret.py").chmod(0)
    (shared_dir / "good.py").write_text(SLEEP)
    process = check_unprivileged(shared_dir, ".")
    assert process.returncode == 1 and process.stderr == ""
    lines = process.stdout.splitlines()
    assert lines[1:] == ["secret.py:1:1: AG001 file not checked: cannot read: Permission denied"]
    assert lines[0].startswith("good.py:4:5: AG101")


def test_unreadable_directory_in_the_tree_is_reported(shared_dir):
    (shared_dir / "app" / "private").mkdir(parents=True)
    (shared_dir / "app" / "private" / "hidden.py").write_text(SLEEP)
    (shared_dir / "app" / "private").chmod(0o700)
    (shared_dir / "app" / "good.py").write_text(SLEEP)
    process = check_unprivileged(shared_dir, "app")
    assert process.returncode == 1 and process.stderr == ""
    lines = process.stdout.splitlines()
    assert lines[1:] == ["app/private:1:1: AG001 file not checked: cannot read directory: Permission denied"]
    assert lines[0].startswith("app/good.py:4:5: AG101")


@pytest.mark.parametrize("given", ["private", "private/hidden.py", "private.py"])
def test_an_unreadable_path_given_explicitly_is_a_usage_error(shared_dir, given):
    (shared_dir / "private").mkdir()
    (shared_dir / "private" / "hidden.py").write_text(SLEEP)
    (shared_dir / "private").chmod(0o700)
    (shared_dir / "private.py").write_text(SLEEP)
    (shared_dir / "private.py").chmod(0o600)
    process = check_unprivileged(shared_dir, given)
    assert process.returncode == 2 and process.stdout == ""
    assert process.stderr == f"asyncguard: error: cannot read {given}: Permission denied\n"


def test_fifo_named_py_is_reported_not_read(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.py")
    code, lines = check_dir(tmp_path, capsys)
    assert code == 1 and lines == [f"{tmp_path / 'pipe.py'}:1:1: AG001 file not checked: not a regular file"]


def test_symlink_loops_and_broken_links(tmp_path, capsys):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path)  # a directory cycle: not followed
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "good.py").write_text(SLEEP)
    code, lines = check_dir(tmp_path, capsys)
    assert code == 1
    assert sum("AG101" in line for line in lines) == 1
    assert any("dangling.py" in line and "AG001 file not checked: cannot read" in line for line in lines)


def test_empty_directory_is_clean(tmp_path, capsys):
    assert check_dir(tmp_path, capsys) == (0, [])


def test_deeply_nested_expression_is_reported_not_crashed():
    source = "async def f():\n    return " + "(" * 500 + "1" + ")" * 500 + "\n"
    findings = check_source(source)
    assert all(f.code == "AG001" for f in findings)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_arbitrary_text_never_raises(text):
    for finding in check_source("async def f():\n" + text):
        assert finding.code != "AG002"
    for finding in check_source(text):
        assert finding.code != "AG002"


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_python_never_raises(data):
    import hypothesmith

    source = data.draw(hypothesmith.from_grammar())
    for finding in check_source(source):
        assert finding.code != "AG002"
