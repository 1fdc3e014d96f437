"""Where the count gate's trade-off comes from (docs/experiments.md, 2026-12-04, "what a row says about its target's
kind"): on the frozen ``overall`` validation rows of a ``bench/gate_rules.py --cache`` file, (1) how well each input
ranks a cold target among the row's cold candidates and among all of them, and (2) how well row-level figures tell a
row whose target is cold from the others (ROC AUC). Run from the repository root after the run the cache was
scored on:

    python bench/probes/row_kind.py /tmp/gate_beauty.npz
    python bench/probes/row_kind.py /tmp/gate_vg.npz video_games
"""

import logging
import sys
import warnings

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, "bench")
from _common import run_catalog  # noqa: E402

from allmrec_pipeline.models.data import popularity_counts  # noqa: E402

cache = np.load(sys.argv[1])
env = sys.argv[2] if len(sys.argv) > 2 else None
inputs, cold, targets = cache["inputs"], cache["cold"], cache["targets"]
n = len(targets)
cold_target = cold[np.arange(n), targets]
rows = np.where(cold_target)[0]
print(f"{n} rows, {len(rows)} with a cold target; cold candidates per row: {cold[rows].sum(1).mean():.1f} "
      f"(cold targets), {cold[~cold_target].sum(1).mean():.1f} (the others)")
z_cf, z_head, z_overlap = inputs[..., 0], inputs[..., 1], inputs[..., 2]
print("(1) Hit@1 on the cold-target rows: the target first among the row's cold candidates | among all")
for name, scores in [
    ("z(CF)", z_cf), ("z(head)", z_head), ("z(overlap)", z_overlap), ("z(head) + z(overlap)", z_head + z_overlap),
    ("z(CF) + z(head) + z(overlap)", z_cf + z_head + z_overlap),
]:
    among_cold = (np.where(cold, scores, -np.inf)[rows].argmax(1) == targets[rows]).mean()
    among_all = (scores[rows].argmax(1) == targets[rows]).mean()
    print(f"    {name:30s} {among_cold:.3f} | {among_all:.3f}")

logging.disable(logging.WARNING)  # the catalog's loading lines and warnings
warnings.simplefilter("ignore")
catalog, _ = run_catalog(env=env)
candidates = catalog.load("eval_candidates")
valid = candidates[(candidates["scenario"] == "overall") & (candidates["split"] == "valid")].reset_index(drop=True)
assert len(valid) == n, "the cache is not this run's"
counts = popularity_counts(catalog.load("item_popularity"), len(catalog.load("item_index")))
recent = [[int(i) for i in h if int(i) != 0][-10:] for h in valid["history"]]
taste = np.array([np.log1p(counts[r]).mean() if r else 0.0 for r in recent])
share_cold = np.array([(counts[r] <= 5).mean() if r else 0.0 for r in recent])
best_warm_cf = np.where(~cold, z_cf, -np.inf).max(1)
ordered = np.sort(z_cf, 1)


def lead(scores: np.ndarray) -> np.ndarray:
    """The best cold candidate's score minus the best other one's (a row without cold candidates: -100)."""
    best_cold = np.where(cold, scores, -50.0).max(1)
    return np.where(cold.any(1), best_cold - np.where(~cold, scores, -50.0).max(1), -100.0)


text_lead, head_lead = lead(z_overlap), lead(z_head)
print("(2) ROC AUC of a row figure for 'the target is cold' (0.5: no information)")
for name, figure in [
    ("low taste for popular items (history)", -taste), ("share of cold items in the history", share_cold),
    ("low CF confidence (best warm z(CF))", -best_warm_cf), ("low CF margin (top-1 minus top-2 z(CF))",
    -(ordered[:, -1] - ordered[:, -2])), ("overlap lead of the best cold candidate", text_lead),
    ("head lead of the best cold candidate", head_lead),
]:
    print(f"    {name:42s} {roc_auc_score(cold_target, figure):.3f}")
