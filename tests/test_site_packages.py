"""The checker survives real code at scale: every installed package, with no internal error."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path


def test_checking_all_installed_site_packages_has_no_internal_error(tmp_path):
    site_packages = Path(sysconfig.get_paths()["purelib"])
    report = tmp_path / "report.json"
    process = subprocess.run(
        [sys.executable, "-m", "asyncguard", "check", str(site_packages), "--no-cache", "--format", "json",
         "--output-file", str(report)],
        capture_output=True, text=True, timeout=900,
    )
    assert process.returncode in (0, 1), process.stderr
    assert "Traceback" not in process.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["files_checked"] > 1000
    assert summary["internal_errors"] == 0
