"""`--fix` never damages a file: its encoding, newlines and BOM are kept, a concurrent edit is never overwritten,
a file that cannot be fixed or written is skipped with one line while the others are fixed, and a baseline is
never written over source code."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

import asyncguard.lint.interface.fixes
import asyncguard.lint.interface.runner
from asyncguard.cli import main
from conftest import ROOT
from test_fixes import cli

HANDLER = "import time\n\nasync def handler():\n    time.sleep(1)\n    return 'caf\u00e9'\n"
FIXED = "import asyncio\nimport time\n\nasync def handler():\n    await asyncio.sleep(1)\n    return 'caf\u00e9'\n"


@pytest.mark.parametrize("header,encoding,newline", [
    ("# -*- coding: latin-1 -*-\n", "latin-1", "\n"),
    ("# vim: set fileencoding=cp1252 :\n", "cp1252", "\r\n"),
    ("", "utf-8-sig", "\n"),
    ("", "utf-8", "\r\n"),
], ids=["latin-1-cookie", "cp1252-cookie-crlf", "bom", "crlf"])
def test_fix_writes_back_in_the_files_own_encoding_newlines_and_bom(tmp_path, header, encoding, newline):
    path = tmp_path / "app.py"
    path.write_bytes((header + HANDLER).replace("\n", newline).encode(encoding))
    process = cli("app.py", "--fix", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert path.read_bytes() == (header + FIXED).replace("\n", newline).encode(encoding)


def test_fix_keeps_the_mode_the_owner_and_a_symbolic_link(tmp_path):
    real = tmp_path / "src" / "app.py"
    real.parent.mkdir()
    real.write_text(HANDLER, encoding="utf-8")
    real.chmod(0o640)
    os.chown(real, 65534, 65534)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    assert cli("link.py", "--fix", cwd=tmp_path).returncode == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8") == FIXED
    status = real.stat()
    assert (stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid) == (0o640, 65534, 65534)
    assert sorted(p.name for p in real.parent.iterdir()) == ["app.py"]  # no temporary file left behind


def two_handlers(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(HANDLER, encoding="utf-8")
    return tmp_path / "a.py", tmp_path / "b.py"


def test_an_edit_made_after_the_fixes_were_computed_is_kept(tmp_path, monkeypatch, capsys):
    first, second = two_handlers(tmp_path)
    edited = HANDLER + "\n\ndef added_meanwhile():\n    return 1\n"
    compute = asyncguard.lint.interface.fixes.fix_files

    def compute_then_edit(*args, **kwargs):
        computed = compute(*args, **kwargs)
        first.write_text(edited, encoding="utf-8")
        return computed

    monkeypatch.setattr(asyncguard.lint.interface.fixes, "fix_files", compute_then_edit)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "a.py", "b.py", "--fix", "--no-cache"]) == 1  # the edited file's finding remains
    assert first.read_text(encoding="utf-8") == edited and second.read_text(encoding="utf-8") == FIXED
    assert "asyncguard: not fixed: a.py: changed since it was read\n" in capsys.readouterr().err


def test_a_file_that_no_longer_parses_is_skipped_and_the_others_fixed(tmp_path, monkeypatch, capsys):
    first, second = two_handlers(tmp_path)
    check = asyncguard.lint.interface.runner.run
    calls = []

    def check_then_break(*args, **kwargs):
        result = check(*args, **kwargs)
        if not calls:
            first.write_text(HANDLER + "def broken(:\n", encoding="utf-8")
        calls.append(result)
        return result

    monkeypatch.setattr(asyncguard.lint.interface.runner, "run", check_then_break)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "a.py", "b.py", "--fix", "--no-cache"]) == 1
    assert second.read_text(encoding="utf-8") == FIXED
    assert "asyncguard: not fixed: a.py: syntax error" in capsys.readouterr().err


def test_too_deep_an_expression_to_fix_is_skipped_and_the_others_fixed(tmp_path):
    first, second = two_handlers(tmp_path)
    deep = HANDLER + "\n\nasync def total():\n    time.sleep(1)\n    return " + "+".join(["1"] * 400) + "\n"
    first.write_text(deep, encoding="utf-8")
    checked = cli("a.py", "--format", "json", cwd=tmp_path)
    assert [f["code"] for f in json.loads(checked.stdout)["findings"]] == ["AG101", "AG101"]  # checked: too deep to fix
    diff = cli("a.py", "--diff", cwd=tmp_path)
    skipped = "asyncguard: not fixed: a.py: too deeply nested to fix\n"
    assert (diff.returncode, diff.stdout, diff.stderr) == (1, "", skipped)
    process = cli("a.py", "b.py", "--fix", cwd=tmp_path)
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert skipped in process.stderr
    assert first.read_text(encoding="utf-8") == deep and second.read_text(encoding="utf-8") == FIXED


def test_a_read_only_file_is_skipped_and_the_others_fixed(tmp_path):
    first, second = two_handlers(tmp_path)
    first.chmod(0o444)
    process = cli("a.py", "b.py", "--fix", cwd=tmp_path)
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert "asyncguard: not fixed: a.py: read-only file\n" in process.stderr
    assert first.read_text(encoding="utf-8") == HANDLER and second.read_text(encoding="utf-8") == FIXED


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a private read-only mount")
def test_a_file_on_a_read_only_file_system_is_skipped_and_the_others_fixed(tmp_path):
    mounted, writable = tmp_path / "mounted", tmp_path / "writable"
    mounted.mkdir()
    writable.mkdir()
    (writable / "b.py").write_text(HANDLER, encoding="utf-8")
    script = (f"mount -t tmpfs tmpfs {mounted} && printf '%s' \"$HANDLER\" > {mounted}/a.py && "
              f"mount -o remount,ro {mounted} && "
              f"{sys.executable} -m asyncguard check {mounted}/a.py {writable}/b.py --fix --no-cache; "
              f"echo \"status=$?\"; cat {mounted}/a.py")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not permitted here: {probe.stderr.decode().strip()}")
    process = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HANDLER": HANDLER, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert "Traceback" not in process.stderr
    assert "asyncguard: not fixed: mounted/a.py: read-only file system\n" in process.stderr
    assert process.stdout.endswith("status=1\n" + HANDLER)
    assert (writable / "b.py").read_text(encoding="utf-8") == FIXED


@pytest.mark.parametrize("arguments,target", [
    (["a.py"], "a.py"),
    (["a.py"], "other.py"),
    (["a.py", "notes.txt"], "notes.txt"),
], ids=["a-checked-file", "any-python-file", "a-checked-file-of-another-kind"])
def test_a_baseline_is_never_written_over_source_code(tmp_path, arguments, target):
    (tmp_path / "a.py").write_text(HANDLER, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("keep me\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    process = cli(*arguments, "--write-baseline", target, cwd=tmp_path)
    assert process.returncode == 2 and process.stderr.startswith("asyncguard: error: ")
    assert "Traceback" not in process.stderr and len(process.stderr.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_file_its_encoding_cannot_give_back_byte_for_byte_is_left_alone(tmp_path):
    path = tmp_path / "app.py"
    data = b"\xef\xbb\xbf\xef\xbb\xbf" + HANDLER.encode()  # a second BOM: read as none, so it would be lost
    path.write_bytes(data)
    process = cli("app.py", "--fix", cwd=tmp_path)
    assert process.returncode == 1 and path.read_bytes() == data
    assert "asyncguard: not fixed: app.py: its bytes do not survive a round trip through utf-8-sig\n" in process.stderr


def test_a_baseline_that_cannot_be_written_keeps_the_one_before(tmp_path, monkeypatch, capsys):
    """A full disk while the baseline is replaced: the earlier baseline stays whole, and no temporary file is left."""
    import errno

    import asyncguard.atomic

    (tmp_path / "a.py").write_text(HANDLER, encoding="utf-8")
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"version": 1, "findings": []}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(asyncguard.atomic.os, "replace", disk_full)
    assert main(["check", "--no-cache", "a.py", "--write-baseline", "baseline.json"]) == 2
    assert capsys.readouterr().err == "asyncguard: error: cannot write baseline.json: No space left on device\n"
    assert baseline.read_text(encoding="utf-8") == '{"version": 1, "findings": []}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "baseline.json"]
