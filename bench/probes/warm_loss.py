"""Where the count gate loses warm items against ``cf`` (docs/experiments.md, 2026-12-06, "where Video Games' warm
items lose"): four offline looks at the run's validation twins and one at its test predictions, no LLM pass.

On the ``bench/gate_frontier.py --cache-dir`` files of the run (``overall``, ``cold_item``, ``warm_item``: every
validation row scored by the run's stage-2 model; checked against the run's key):

1. the shipped gate − ``cf`` by terciles of the CF model's row margin (its top z-score minus its second);
2. the shipped gate with the non-CF terms of the *other* (warm) candidates dropped on rows whose CF margin is at
   least ``tau``: does trusting a confident CF model on warm candidates help warm rows?
3. the bounds rule (``llm.gate_bounds.pick_gate``) with a margin on warm items (``warm_minus_cf`` 0, 0.02, 0.04),
   chosen on the first 300 rows of each twin and scored on the held-out rows (twin rows of the choice rows' users
   left out, as ``gate_frontier.py`` holds them out);
4. the gate's cold threshold (``gate_max_count`` 5) against the split's cold popularity group's largest count:
   how many grid points meet every bound on the held-out rows (an oracle's frontier), per threshold;

and on the run's latest test predictions (``evaluate_scenarios``): 5. the rows ``cf`` hits and ``a_llmrec`` or
``cf_text_gate`` misses, by the kind (cold: at most 5 training interactions) of the candidate that beat the target.

    python bench/probes/warm_loss.py /tmp/frontier_beauty > bench/results/probes/warm_loss_beauty.txt
    python bench/probes/warm_loss.py /tmp/frontier_vg video_games > bench/results/probes/warm_loss_video_games.txt
"""

import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "bench")
from _common import check_cache, run_catalog, run_key  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.llm.gate_bounds import GateBounds, _slack_table, pick_gate  # noqa: E402
from allmrec_pipeline.llm.recommender import fuse_inputs  # noqa: E402
from allmrec_pipeline.llm.training import gate_points  # noqa: E402
from allmrec_pipeline.models.data import popularity_counts  # noqa: E402

SCENARIOS = ("overall", "cold_item", "warm_item")
CHOOSE = 300  # the rows stage 2's bounds rule chose the gate on (stage2.training.gate_valid_rows)

logging.disable(logging.WARNING)
warnings.simplefilter("ignore")
cache_dir, env = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
catalog, _ = run_catalog(env=env)
data = {}
for s in SCENARIOS:
    data[s] = dict(np.load(cache_dir / f"{s}.npz"))
    check_cache(cache_dir / f"{s}.npz", data[s], lambda: run_key(catalog))
counts = popularity_counts(catalog.load("item_popularity"), len(catalog.load("item_index")))
rows = catalog.load("eval_candidates")
candidates = {}
for s in SCENARIOS:
    valid = rows[(rows.scenario == s) & (rows.split == "valid")].reset_index(drop=True)
    assert (valid.user_idx.to_numpy()[: len(data[s]["users"])] == data[s]["users"]).all(), "not this run's rows"
    candidates[s] = np.stack(valid.candidates.to_numpy())[: len(data[s]["users"])]
gate = torch.from_numpy(data["overall"]["gate"]).float()
grid = gate_points(True, bool(data["overall"]["gate_cosine"]))
cf_point = grid[0]


def hits(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]


def interval(diff: np.ndarray) -> str:
    low, high = metrics.bootstrap_ci_rows(diff[None], 0)
    return f"{diff.mean():+.3f} [{low[0]:+.3f}, {high[0]:+.3f}]"


def fused(s: str, point: torch.Tensor, cold: np.ndarray | None = None, keep=slice(None)) -> np.ndarray:
    mask = torch.from_numpy(data[s]["cold"] if cold is None else cold)[keep]
    return fuse_inputs(torch.from_numpy(data[s]["inputs"]).float()[keep], mask, point).numpy()


def margin(s: str) -> np.ndarray:
    ordered = np.sort(data[s]["inputs"][..., 0], axis=1)
    return ordered[:, -1] - ordered[:, -2]


print(f"env {env or 'base'}; shipped gate (rows: other, cold candidates) {gate.tolist()}")
print("1. shipped gate - cf by terciles of the CF model's row margin (all validation rows of each twin)")
for s in SCENARIOS:
    t, m = data[s]["targets"], margin(s)
    diff = hits(fused(s, gate), t) - hits(fused(s, cf_point), t)
    cut = np.quantile(m, [1 / 3, 2 / 3])
    tercile = np.digitize(m, cut)
    print(f"   {s:9s} n={len(t)} margin cuts {cut.round(2).tolist()}: "
          + "  ".join(f"T{k + 1} {interval(diff[tercile == k])}" for k in range(3)))

print("2. the other candidates' non-CF terms dropped on rows whose CF margin >= tau (gate - cf, all rows)")
warm_text = gate.clone()
warm_text[:, 0], warm_text[1] = 0.0, 0.0  # the other candidates' non-CF terms only
for tau in (None, 1.5, 1.0, 0.5):
    line = []
    for s in SCENARIOS:
        t = data[s]["targets"]
        scores = fused(s, gate)
        if tau is not None:
            scores = scores - fused(s, warm_text) * (margin(s) >= tau)[:, None]
        line.append(f"{s} {interval(hits(scores, t) - hits(fused(s, cf_point), t))}")
    print(f"   tau {tau}: " + " | ".join(line))

chosen_users = data["overall"]["users"][:CHOOSE]
held = {}
for s in SCENARIOS:
    keep = np.arange(len(data[s]["targets"])) >= CHOOSE
    if s != "overall":
        keep &= ~np.isin(data[s]["users"], chosen_users)
    held[s] = keep
overlap_hits = {s: hits(data[s]["inputs"][..., 2], data[s]["targets"]) for s in SCENARIOS}

print(f"3. the bounds rule with a margin on warm items, chosen on the first {CHOOSE} rows, scored on the held-out rows")
first = slice(0, CHOOSE)
for warm_bound in (0.0, 0.02, 0.04):
    bounds = GateBounds(0.0, -0.02, 0.15, warm_bound)
    point, figures = pick_gate(
        {s: torch.from_numpy(data[s]["inputs"][first]).float() for s in SCENARIOS},
        {s: torch.from_numpy(data[s]["cold"][first]) for s in SCENARIOS},
        {s: data[s]["targets"][first] for s in SCENARIOS},
        overlap_hits["cold_item"][first], grid, bounds, 0,
    )
    print(f"   warm_minus_cf {warm_bound:+.2f}: gate {point.tolist()}, smallest slack on the choice rows "
          f"{figures['smallest_slack']:+.3f}")
    for s in SCENARIOS:
        t, keep = data[s]["targets"][held[s]], held[s]
        h = hits(fused(s, point, keep=keep), t)
        print(f"      {s:9s} n={keep.sum()} Hit@1 {h.mean():.3f}  - cf {interval(h - hits(fused(s, cf_point, keep=keep), t))}"
              f"  - text_overlap {interval(h - overlap_hits[s][keep])}")

popularity = catalog.load("item_popularity")
group_max = int(popularity.loc[popularity["group"] == "cold", "count"].max())
print(f"4. the oracle's frontier on the held-out rows by cold threshold (the split's cold group: count <= {group_max})")
for threshold in sorted({5, group_max}):
    table = _slack_table(
        {s: torch.from_numpy(data[s]["inputs"][held[s]]).float() for s in SCENARIOS},
        {s: torch.from_numpy(counts[candidates[s][held[s]]] <= threshold) for s in SCENARIOS},
        {s: data[s]["targets"][held[s]] for s in SCENARIOS},
        overlap_hits["cold_item"][held["cold_item"]], grid, GateBounds(0.0, -0.02, 0.15, 0.0), 0,
    )
    print(f"   count <= {threshold}: {(table['smallest_slack'] >= 0).sum()} of {len(grid)} points meet every bound; "
          f"the largest smallest slack {table['smallest_slack'].max():+.3f}")

print("5. test rows cf hits and the model misses, by the kind of the candidate that beat the target")
predictions = catalog.load("predictions")
for s in ("overall", "warm_item"):
    reference = predictions[(predictions.model == "cf") & (predictions.scenario == s)].sort_values("row")
    for model in ("a_llmrec", "cf_text_gate"):
        frame = predictions[(predictions.model == model) & (predictions.scenario == s)].sort_values("row")
        if frame.empty:
            continue
        assert (frame.row.to_numpy() == reference.row.to_numpy()).all()
        cands, scores = np.stack(frame.candidates.to_numpy()), np.stack(frame.scores.to_numpy())
        top = cands[np.arange(len(cands)), scores.argmax(1)]
        ours, theirs = frame.target_rank.to_numpy() == 1, reference.target_rank.to_numpy() == 1
        lost, won = theirs & ~ours, ours & ~theirs
        print(f"   {s:9s} {model:12s} n={len(frame)}: lost {lost.sum()} ({(counts[top[lost]] <= 5).mean():.2f} to a cold "
              f"candidate; cold share of candidates {(counts[cands] <= 5).mean():.2f}), won {won.sum()}")
