"""Ingest throughput: our chunked Arrow reader vs a plain ``json.loads`` line loop on the same file.

Builds a file of at least 2M review lines from the genuine Amazon 2018 review files (repeating them with
renamed users), then times each reader in its own subprocess and reads its peak RSS. Prints one JSON line.

    python bench/ingest.py [--source-dir ../shared/data/amazon2018_raw] [--lines 2000000]

Without the development share, it falls back to the genuine slice in tests/fixtures/amazon2018/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "_work"


def build_file(source_dir: Path, n_lines: int) -> Path:
    """Concatenate genuine review lines, renaming reviewerID per repetition, up to ``n_lines``."""
    files = sorted(source_dir.glob("*_5.json.gz")) or sorted(
        (ROOT / "tests/fixtures/amazon2018").glob("*_5.json.gz")
    )
    genuine = []
    for file in files:
        with gzip.open(file, "rt", encoding="utf-8") as handle:
            genuine.extend(handle.read().splitlines())
    target = WORK / f"reviews_{n_lines}.json"
    if target.exists():
        return target
    WORK.mkdir(parents=True, exist_ok=True)
    written, repetition = 0, 0
    with target.open("w", encoding="utf-8") as out:
        while written < n_lines:
            for line in genuine[: n_lines - written]:
                out.write(line.replace('"reviewerID": "', f'"reviewerID": "r{repetition}_', 1) + "\n")
            written += min(len(genuine), n_lines - written)
            repetition += 1
    return target


def _child(reader: str, path: str) -> None:
    """Run one reader; print rows and seconds (library imports excluded). Peak RSS is read by the parent."""
    if reader == "ours":
        from allmrec_pipeline.pipelines.ingest_amazon.badlines import BadLineLog
        from allmrec_pipeline.pipelines.ingest_amazon.readers import AMAZON_2018_REVIEWS, read_json_reviews
    start = time.perf_counter()
    if reader == "ours":
        rows = len(read_json_reviews(path, AMAZON_2018_REVIEWS, BadLineLog()))
    else:  # the baseline: a plain json.loads line loop keeping the four fields
        users, items, ratings, times = [], [], [], []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                users.append(record["reviewerID"])
                items.append(record["asin"])
                ratings.append(float(record["overall"]))
                times.append(int(record["unixReviewTime"]))
        rows = len(users)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - start}))


def measure(reader: str, path: Path) -> dict:
    """One run of ``reader`` in a fresh process: rows, seconds and that process's peak RSS."""
    code = (
        "import resource, runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, __file__, "--child", reader, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    *_, result_line, rss_line = out.stdout.strip().splitlines()
    result = json.loads(result_line)
    result["peak_rss_mb"] = int(rss_line) / 1024
    return result


def summarize(runs: list[dict]) -> dict:
    """Median seconds over the runs (this VM's neighbours add noise), and the largest peak RSS seen."""
    seconds = sorted(run["seconds"] for run in runs)
    return {
        "rows": runs[0]["rows"],
        "seconds": seconds[len(seconds) // 2],
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "all_seconds": [run["seconds"] for run in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=Path, default=ROOT.parent / "shared/data/amazon2018_raw")
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    path = build_file(args.source_dir, args.lines)
    # Interleaved, so that both readers see the same background noise.
    runs = {"baseline": [], "ours": []}
    for _ in range(args.repeats):
        for reader, results in runs.items():
            results.append(measure(reader, path))
    baseline, ours = summarize(runs["baseline"]), summarize(runs["ours"])
    assert ours["rows"] == baseline["rows"], (ours, baseline)
    print(
        json.dumps(
            {
                "bench": "ingest",
                "lines": baseline["rows"],
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "ours_lines_per_s": round(ours["rows"] / ours["seconds"]),
                "baseline_lines_per_s": round(baseline["rows"] / baseline["seconds"]),
                "speedup_median": round(baseline["seconds"] / ours["seconds"], 2),
                "ours_peak_rss_mb": round(ours["peak_rss_mb"]),
                "baseline_peak_rss_mb": round(baseline["peak_rss_mb"]),
                "ours_seconds": [round(x, 2) for x in ours["all_seconds"]],
                "baseline_seconds": [round(x, 2) for x in baseline["all_seconds"]],
            }
        )
    )


if __name__ == "__main__":
    main()
