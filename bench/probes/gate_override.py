"""The run's `a_llmrec` rescored with another count gate (weights chosen elsewhere, e.g. by
`bench/gate_frontier.py` on validation rows), on the test rows of the latest predictions, paired with that run's
`a_llmrec`, `cf` and the text floors. No test row chooses anything here: the gate comes from the command line.

    python bench/probes/gate_override.py --gate '[[1, 0.25, 0.25, 0.25], [0.5, 0.5, 0.5, 0.5]]' \
        [--env video_games] [--params evaluate_scenarios.max_llm_rows=null] > bench/results/probes/<name>.txt
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import expected_hits, run_catalog  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.models.checkpoint import Checkpoint  # noqa: E402
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import evaluate_model  # noqa: E402
from allmrec_pipeline.pipelines.evaluate_scenarios.pipeline import model_inputs  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--gate", required=True, help="the gate as JSON: rows other, cold; columns as the run's")
parser.add_argument("--env", default=None)
parser.add_argument("--params", default="", help="runtime params as the run that made the predictions took them")
args = parser.parse_args()
catalog, _ = run_catalog(args.params, env=args.env)
inputs = {name: catalog.load(source) for name, source in model_inputs("a_llmrec").items()}
checkpoint = inputs["stage2_model"]
gate = torch.tensor(json.loads(args.gate), dtype=torch.float32)
if gate.shape != checkpoint.tensors["gate"].shape:
    raise SystemExit(f"--gate has shape {tuple(gate.shape)}, the run's gate {tuple(checkpoint.tensors['gate'].shape)}")
print("the run's gate:", checkpoint.tensors["gate"].tolist(), "| rescored with:", gate.tolist())
print("matcher:", "matcher.a" in checkpoint.tensors)
inputs["stage2_model"] = Checkpoint({**checkpoint.tensors, "gate": gate}, checkpoint.metadata)
rescored = evaluate_model("a_llmrec", **inputs)
latest = catalog.load("predictions")


def hits(frame):  # a tie at the top splits the hit, as the evaluation counts it
    return expected_hits(frame)


new = hits(rescored)
for scenario in dict.fromkeys(rescored["scenario"]):
    a = new.loc[scenario]
    line = f"{scenario:12s} n={len(a)} a_llmrec(gate) {a.mean():.3f}"
    for name in ("a_llmrec", "cf", "text_overlap", "text_cosine"):
        other = hits(latest[latest["model"] == name]).loc[scenario].reindex(a.index)
        if other.isna().any():
            line += f" | {name}: not on these rows"
            continue
        paired = metrics.paired_bootstrap(a.to_numpy(), other.to_numpy(), seed=0)
        label = "run's a_llmrec" if name == "a_llmrec" else name
        line += (
            f" | - {label} ({other.mean():.3f}) {paired['difference']:+.3f} "
            f"[{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]"
        )
    print(line, flush=True)
