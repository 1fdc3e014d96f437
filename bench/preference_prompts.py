"""Which wording of the preference question makes each model name one label? Measured on stage-2 *training*
users (never the users ``generate_preferences`` reports on), by the share of answers that name exactly one label
of the dataset's set (``llm.preferences.match_label``); no answer is compared with a truth.

    python bench/preference_prompts.py --env movielens --out bench/results/preference_prompts_movielens.json

Needs the run's ``stage2`` and TALLRec checkpoints (``make movielens``). Prints one JSON line; ``--out`` also
writes it to a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from _common import emit, run_catalog

from allmrec_pipeline.pipelines.generate_preferences.nodes import LLM_MODELS, answer_with_llm, labels_by_item

STEM = "{user}This user has {verb} {history} in the previous."
LISTED = " The {label_noun}s are: {labels}. Which {label_noun} does this user like most? Answer with one {label_noun}.\nAnswer:"
TEMPLATES = {
    "continue": STEM + " Of the {label_noun}s {labels}, the {label_noun} this user likes most is",
    "question": STEM + LISTED,
    "continue_quoted": STEM + ' Of the {label_noun}s {labels}, the {label_noun} this user likes most is "',
    "question_quoted": STEM + LISTED + ' "',
}
CHECKPOINTS = {"a_llmrec": "stage2_model", "tallrec": "stage2_tallrec_model"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default=None, help="the Kedro environment of the run (e.g. movielens)")
    parser.add_argument("--users", type=int, default=40, help="training users asked (seeded)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    catalog, _ = run_catalog(env=args.env)
    params = catalog.load("parameters")
    items, index = catalog.load("items"), catalog.load("item_index")
    by_item = labels_by_item(items, index)
    if by_item is None:
        raise SystemExit("the run's items have no category labels: nothing to ask")
    candidates = catalog.load("eval_candidates")
    reported = set(
        candidates[(candidates["scenario"] == "overall") & (candidates["split"] == "valid")]["user_idx"]
    )
    train = catalog.load("train_sequences")
    train = train[~train["user_idx"].isin(reported)].sample(args.users, random_state=params["seed"])
    rows = pd.DataFrame(
        {
            "user_idx": train["user_idx"].to_numpy(),
            "history": [list(map(int, h)) for h in train["items"]],
            "truth": [[] for _ in range(len(train))],
        }
    )
    setup = {"labels": sorted({label for labels in by_item for label in labels})}
    inputs = [catalog.load(n) for n in ("cf_model", "joint_item_embeddings")]
    results = []
    for name, text in TEMPLATES.items():
        settings = {**params["generate_preferences"], "template": text}
        for model in LLM_MODELS:
            checkpoint = catalog.load(CHECKPOINTS[model]) if model in CHECKPOINTS else None
            answers = answer_with_llm(
                model, rows, setup, *inputs, items, index, settings, params["stage2"], params["llms"],
                params["llm"], params["dataset"], checkpoint,
            )  # fmt: skip
            results.append(
                {
                    "template": name,
                    "model": model,
                    "named_one_label": float(answers["label"].notna().mean()),
                    "matches": answers["match"].value_counts().to_dict(),
                    "examples": answers["generation"].head(3).tolist(),
                }
            )
    emit(
        {
            "bench": "preference_prompts",
            "env": args.env,
            "users": len(rows),
            "max_new_tokens": params["generate_preferences"]["max_new_tokens"],
            "templates": TEMPLATES,
            "results": results,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
