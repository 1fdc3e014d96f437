"""Every bench answers --help without a run's outputs (a smoke test of its imports and options)."""

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

# recbole_sasrec.py runs inside RecBole's own environment (cf_vs_recbole.py starts it there)
BENCHES = sorted(
    p.name for p in (PROJECT_ROOT / "bench").glob("*.py") if p.name not in ("_common.py", "recbole_sasrec.py")
)


def test_every_bench_is_listed():
    assert {"stage2_variants.py", "evaluate.py", "stage1.py", "serve.py"} <= set(BENCHES)


@pytest.mark.parametrize("script", BENCHES)
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
