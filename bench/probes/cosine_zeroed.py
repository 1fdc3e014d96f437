"""The run's `a_llmrec` with the cosine's gate weights set to 0 (the previous default's model: the gate's other
weights are chosen first, without the cosine, and joint training never reads the gate), scored on the same test
rows as the run's own predictions, then paired: what the cosine input adds on test rows.

    python bench/probes/cosine_zeroed.py [--env video_games] [--params evaluate_scenarios.max_llm_rows=null] \
        > bench/results/probes/cosine_zeroed_<dataset>.txt
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import expected_hits, run_catalog  # noqa: E402

from allmrec_pipeline import metrics  # noqa: E402
from allmrec_pipeline.models.checkpoint import Checkpoint  # noqa: E402
from allmrec_pipeline.pipelines.evaluate_scenarios.nodes import evaluate_model  # noqa: E402
from allmrec_pipeline.pipelines.evaluate_scenarios.pipeline import model_inputs  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--env", default=None)
parser.add_argument("--params", default="", help="runtime params as the run that made the predictions took them")
args = parser.parse_args()
catalog, _ = run_catalog(args.params, env=args.env)
inputs = {name: catalog.load(source) for name, source in model_inputs("a_llmrec").items()}
checkpoint = inputs["stage2_model"]
gate = checkpoint.tensors["gate"].clone()
print("the run's gate (rows: other, cold; columns: cf, head, overlap, cosine):", gate.tolist())
zeroed = dict(checkpoint.tensors)
zeroed["gate"] = gate.clone()
zeroed["gate"][:, -1] = 0.0
inputs["stage2_model"] = Checkpoint(zeroed, checkpoint.metadata)
without = evaluate_model("a_llmrec", **inputs)
shipped = catalog.load("predictions")
shipped = shipped[shipped["model"] == "a_llmrec"]


def hits(frame):  # a tie at the top splits the hit, as the evaluation counts it
    return expected_hits(frame)


new, old = hits(shipped), hits(without)
for scenario in dict.fromkeys(shipped["scenario"]):
    a = new.loc[scenario]
    b = old.loc[scenario].reindex(a.index)
    paired = metrics.paired_bootstrap(a.to_numpy(), b.to_numpy(), seed=0)
    print(
        f"{scenario:13s} with cosine {a.mean():.3f}  without {b.mean():.3f}  with - without "
        f"{paired['difference']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}] (n={len(a)})"
    )
