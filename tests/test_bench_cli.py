"""The evaluation benches answer --help without a run's outputs (a smoke test of their imports and options)."""

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.mark.parametrize(
    "script", ["title_scoring.py", "stage2_variants.py", "stage2_diagnostics.py", "serve.py"]
)
def test_bench_help(script):
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
