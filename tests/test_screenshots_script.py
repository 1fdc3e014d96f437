"""scripts/screenshots.sh refuses clearly, before starting anything, when a prerequisite is missing (the captures
themselves need Chromium and a run's database: docs/tracking.md, "Screenshots")."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts/screenshots.sh"


def _run(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=cwd,
        env={**os.environ, "VENV": str(venv), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_chromium_it_names_the_package(tmp_path):
    result = _run(tmp_path, CHROMIUM=str(tmp_path / "no-such-browser"))
    assert result.returncode == 2
    assert "no Chromium" in result.stderr and "apt-get install chromium" in result.stderr


def test_without_a_run_it_asks_for_make_run_and_starts_nothing(tmp_path):
    result = _run(tmp_path, CHROMIUM="/bin/true")
    assert result.returncode == 2
    assert "no mlflow.db" in result.stderr and "make run" in result.stderr
    assert not (tmp_path / "docs").exists()
