"""Stage-2 diagnostics from the CF model alone (no LLM): does ``x_u`` memorise stage 2's training targets, and
how many cold-item targets does the text path reach?

- SASRec's Hit@1 on stage-2 training samples (each seeded training user's last training item among 19
  never-touched negatives, built by the pipeline's own sampler) against its Hit@1 on the ``overall``
  validation rows: a wide gap means the user vectors stage 2 reads have seen the training targets.
- The training-interaction counts of the ``cold_item`` / ``warm_item`` test targets, and how many items have
  none (only those take the text path at ``stage1.text_path_max_count: 0``).

    python bench/stage2_diagnostics.py

Reads the latest run through a KedroSession (``make run`` first). Prints one JSON line.
"""

import argparse
import json

import numpy as np
import torch
from _common import run_catalog

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import row_samples, training_samples, user_vectors
from allmrec_pipeline.llm.training import Stage2TrainingConfig
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.schema import base_parameters


def _hit(backbone, samples) -> tuple:
    users = torch.stack([s.user_vector for s in samples])
    cands = torch.as_tensor([s.candidates for s in samples])
    with torch.no_grad():
        sc = backbone.score_vectors(users, backbone.item_embeddings[cands]).float().numpy()
    t = np.array([s.target_pos for s in samples])
    v = metrics.scores_per_row(sc, t, ("hit_at_1",))["hit_at_1"]
    return float(v.mean()), metrics.wilson_ci(v), len(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42, help="the stage-2 sampler's seed")
    args = parser.parse_args()
    cat, _ = run_catalog()
    idx = cat.load("item_index")
    bb = load_backbone(cat.load("cf_model"), expected_n_items=len(idx))
    out = {}
    for n in (100, 2000):
        make, n_users = training_samples(
            cat.load("train_sequences"),
            cat.load("sequences"),
            bb,
            len(idx),
            Stage2TrainingConfig(
                **{
                    **base_parameters()["stage2"]["training"],
                    "max_train_users": n,
                    "n_negatives": 19,
                    "head_warmup_epochs": 0,
                }
            ),
            args.seed,
        )
        out[f"train_samples_{n}"] = _hit(bb, make(1))
    ec = cat.load("eval_candidates")
    v = ec[(ec.scenario == "overall") & (ec.split == "valid")]
    out["valid_overall"] = _hit(bb, row_samples(v, user_vectors(bb, list(v.history))))
    pop = cat.load("item_popularity")
    counts = np.zeros(len(idx) + 1)
    counts[pop.item_idx] = pop["count"]
    for sc in ("cold_item", "warm_item"):
        t = ec[(ec.scenario == sc) & (ec.split == "test")].target_item_idx.to_numpy()
        c = counts[t]
        out[f"{sc}_target_train_counts"] = {
            "rows": len(t),
            "zero": int((c == 0).sum()),
            "le_2": int((c <= 2).sum()),
            "le_5": int((c <= 5).sum()),
            "le_10": int((c <= 10).sum()),
            "median": float(np.median(c)),
            "max": float(c.max()),
        }
    out["items_with_zero_train_interactions"] = int((counts[1:] == 0).sum())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
