"""Can any weighting the count gate can express meet the stage-2 issue's bounds on held-out validation rows?

The run's stage-2 model scores the validation rows of three scenarios: ``overall`` and its two validation twins,
``cold_item`` and ``warm_item`` (the ``overall`` validation rows of every user whose target is in that popularity
group, derived by ``split_sequences`` exactly as the test scenarios are). Every point of the gate's grid
(``llm.training.gate_points``) is then scored on the held-out rows: ``overall`` after the first ``--choose-rows``
(the rows the run chose its gate on), and the twins' rows after their first ``--choose-rows``, less any row of a
user among the ``overall`` choice rows. Each point gets its paired differences (95% paired bootstrap) and is
checked against the issue's bounds:

- ``overall`` − ``cf``: the interval's lower bound is at least 0;
- ``cold_item`` − ``text_overlap``: the lower bound is at least −0.02, and − ``cf`` at least +0.15;
- ``warm_item`` − ``cf``: the upper bound is at least 0

(the run's ``stage2.training.gate_bounds``, by which ``gate_choice: bounds`` chooses the gate).

Picking the best point on the rows it is scored on is an oracle's choice (optimistic): if no point meets every
bound, no rule for choosing the gate can, and the gap is in the three scores themselves. Also reported: the gate
the run shipped, and the point a merit over the three scenarios' choice rows picks (the mean of their Hit@1s).
No test row is read.

``--cosine`` asks whether a fourth input would widen the frontier: z(text_cosine) (the ``text_cosine`` floor's
scores: the sentence encoder's title vectors, from the run's ``item_title_vectors`` or encoded now) with its own
weights for cold candidates and for the rest (``llm.training.COSINE_GRID``), crossed with every point of the gate's
grid, as a gate with ``stage2.model.gate_text_cosine`` weighs it (a run whose gate already does is scored on that
grid without ``--cosine``).

    python bench/gate_frontier.py --cache-dir /tmp/frontier_beauty --out bench/results/gate_frontier_beauty.json
    python bench/gate_frontier.py --env video_games --cache-dir /tmp/frontier_vg \\
        --out bench/results/gate_frontier_video_games.json
    python bench/gate_frontier.py --cache-dir /tmp/frontier_beauty --cosine --out bench/results/...json

Prints one JSON line; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np
import torch
from _common import check_cache, emit, run_catalog, run_key, title_vector_frame
from gate_rules import _hits, _score, _valid_rows

from allmrec_pipeline import metrics, text_floors
from allmrec_pipeline.llm.training import gate_points

SCENARIOS = ("overall", "cold_item", "warm_item")


def _bounds(args: argparse.Namespace) -> tuple:
    """The stage-2 issue's bounds on Hit@1 differences, as the run's ``stage2.training.gate_bounds`` sets them
    (what ``gate_choice: bounds`` chooses by): (label, scenario, reference, which figure, its least value)."""
    catalog, _ = run_catalog(args.params, env=args.env)
    least = catalog.load("params:stage2")["training"]["gate_bounds"]
    return (
        (f"overall - cf: lower bound >= {least['overall_minus_cf']:+g}", "overall", "cf", "ci_low",
         least["overall_minus_cf"]),
        (f"cold_item - text_overlap: lower bound >= {least['cold_minus_text_overlap']:+g}", "cold_item",
         "text_overlap", "ci_low", least["cold_minus_text_overlap"]),
        (f"cold_item - cf: >= {least['cold_minus_cf']:+g}", "cold_item", "cf", "difference", least["cold_minus_cf"]),
        (f"warm_item - cf: upper bound >= {least['warm_minus_cf']:+g}", "warm_item", "cf", "ci_high",
         least["warm_minus_cf"]),
    )  # fmt: skip


@functools.cache
def _current_key(params: str, env: str | None) -> str:
    """The run's ``run_key``, computed once for the three scenarios' caches."""
    return run_key(run_catalog(params, env=env)[0])


def _scores(args: argparse.Namespace, scenario: str) -> dict[str, np.ndarray]:
    """The gate's inputs, cold mask, targets and users of ``scenario``'s validation rows, from ``--cache-dir``
    when it holds them (no LLM pass), else scored now (and cached)."""
    path = args.cache_dir / f"{scenario}.npz" if args.cache_dir else None
    if path is not None and path.exists():
        cached = dict(np.load(path, allow_pickle=False))
        check_cache(path, cached, lambda: _current_key(args.params, args.env))
        return cached
    catalog, _ = run_catalog(args.params, env=args.env)
    users = _valid_rows(catalog.load("eval_candidates"), scenario)["user_idx"].to_numpy()
    inputs, cold, targets, _, gate, n_choose, overlap, *_, gate_cosine = _score(args, scenario)
    scores = {
        "inputs": inputs.numpy(), "cold": cold.numpy(), "targets": targets, "users": users,
        "gate": gate.numpy(), "n_choose": np.int64(n_choose), "overlap": np.bool_(overlap),
        "gate_cosine": np.bool_(gate_cosine), "run_key": np.str_(run_key(catalog)),
    }  # fmt: skip
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **scores)
    return scores


def _cosine(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Each scenario's z(text_cosine) ``(N, C)`` over the run's ``n_history`` most recent history titles (the
    ``text_cosine`` floor's scores, z-scored per row as the gate's other inputs are)."""
    from allmrec_pipeline.llm.inputs import embedding_table

    catalog, _ = run_catalog(args.params, env=args.env)
    vectors = embedding_table(title_vector_frame(catalog), "vector").numpy()  # (N+1, d), row 0 the padding
    n_history = int(catalog.load("params:stage2")["model"]["n_history"])
    candidates = catalog.load("eval_candidates")
    cosine = {}
    for scenario in SCENARIOS:
        rows = _valid_rows(candidates, scenario)
        scores = text_floors.cosine_scores(
            list(rows["history"]),
            np.stack(rows["candidates"].to_numpy()).astype(np.int64),
            vectors,
            n_history,
        )
        cosine[scenario] = text_floors.zscore_rows(scores).astype(np.float32)
    return cosine


def _paired(a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, float]:
    figures = metrics.paired_bootstrap(a, b, seed=seed)
    return {key: float(figures[key]) for key in ("difference", "ci_low", "ci_high")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="the Kedro environment of the run (e.g. video_games)")
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument("--seed", type=int, default=42, help="the bootstrap's seed")
    parser.add_argument(
        "--choose-rows",
        type=int,
        default=None,
        help="rows of each scenario left out as choice rows (default: the run's stage2.training.gate_valid_rows)",
    )
    parser.add_argument("--cache-dir", type=Path, help="a folder for each scenario's scores (<scenario>.npz)")
    parser.add_argument(
        "--cosine",
        action="store_true",
        help="add z(text_cosine) as a fourth input, weighed by llm.training.COSINE_GRID",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    args = parser.parse_args()

    data = {scenario: _scores(args, scenario) for scenario in SCENARIOS}
    bounds = _bounds(args)
    overall = data["overall"]
    if not bool(overall["overlap"]):
        raise SystemExit(
            "the run's gate does not weigh z(text_overlap) (stage2.model.gate_text_overlap: false)"
        )
    n_choose = int(overall["n_choose"]) if args.choose_rows is None else args.choose_rows
    gate_cosine = bool(overall.get("gate_cosine", False))  # the run's gate weighs z(text_cosine) itself
    if args.cosine and gate_cosine:
        raise SystemExit("the run's gate already weighs z(text_cosine): leave out --cosine")
    points = gate_points(True, gate_cosine)
    overlap_only = torch.zeros_like(points[0])
    overlap_only[:, 2] = 1.0  # z(text_overlap) alone: the floor's ranking
    shipped_gate = torch.from_numpy(overall["gate"])
    if args.cosine:
        if not all("cosine" in scores for scores in data.values()):
            cosine = _cosine(args)
            for scenario, scores in data.items():
                scores["cosine"] = cosine[scenario]
                if args.cache_dir:  # kept beside the scenario's scores: the next call reads it
                    np.savez(args.cache_dir / f"{scenario}.npz", **scores)
        for scores in data.values():
            scores["inputs"] = np.concatenate([scores["inputs"], scores["cosine"][..., None]], axis=-1)
        points = gate_points(True, True)
        overlap_only, shipped_gate = (
            torch.cat([g, torch.zeros(2, 1)], dim=1) for g in (overlap_only, shipped_gate)
        )
    chosen_users = overall["users"][:n_choose]
    hits, floors, choose, held_out = {}, {}, {}, {}
    for scenario, scores in data.items():
        inputs, cold = torch.from_numpy(scores["inputs"]), torch.from_numpy(scores["cold"])
        hits[scenario] = np.stack([_hits(inputs, cold, gate, scores["targets"]) for gate in points])
        floors[scenario] = {
            "cf": hits[scenario][0],  # the grid's first point: the CF model's weighting
            "text_overlap": _hits(inputs, cold, overlap_only, scores["targets"]),
        }
        first = np.arange(len(scores["targets"])) < n_choose
        choose[scenario] = first
        held_out[scenario] = ~first
        if scenario != "overall":  # a twin row of a user the choice rows hold is not held out
            held_out[scenario] &= ~np.isin(scores["users"], chosen_users)
        if not held_out[scenario].any():
            raise SystemExit(
                f"no held-out {scenario} validation rows: at most {n_choose}, or all of choice-row users"
            )

    def entry(index: int) -> dict:
        figures, slack = {}, []
        for _, scenario, reference, which, least in bounds:
            keep = held_out[scenario]
            paired = _paired(hits[scenario][index][keep], floors[scenario][reference][keep], args.seed)
            figures[f"{scenario}_minus_{reference}"] = paired
            slack.append(paired[which] - least)
        return {
            "point": index,
            "gate": points[index].tolist(),
            "hit_at_1": {s: float(hits[s][index][held_out[s]].mean()) for s in SCENARIOS},
            **figures,
            "meets_every_bound": bool(min(slack) >= 0),
            "smallest_slack": float(min(slack)),
        }

    entries = [entry(i) for i in range(len(points))]
    shipped = next((i for i, gate in enumerate(points) if torch.allclose(gate, shipped_gate)), None)
    merit = [np.mean([hits[s][i][choose[s]].mean() for s in SCENARIOS]) for i in range(len(points))]
    emit(
        {
            "bench": "gate_frontier",
            "env": args.env,
            "params": args.params,
            "inputs": [
                "cf",
                "head",
                "text_overlap",
                *(["text_cosine"] if args.cosine or gate_cosine else []),
            ],
            "choose_rows": n_choose,
            "held_out_rows": {s: int(held_out[s].sum()) for s in SCENARIOS},
            "held_out_floors": {
                s: {f: float(v[held_out[s]].mean()) for f, v in floors[s].items()} for s in SCENARIOS
            },
            "points": len(points),
            "meeting_every_bound": [e["point"] for e in entries if e["meets_every_bound"]],
            "meeting_each_bound": {
                label: sum(e[f"{scenario}_minus_{reference}"][which] >= least for e in entries)
                for label, scenario, reference, which, least in bounds
            },
            "closest": max(entries, key=lambda e: e["smallest_slack"]),
            "shipped": entries[shipped] if shipped is not None else None,
            "three_scenario_merit": entries[int(np.argmax(merit))],  # argmax keeps the first of equals
        },
        args.out,
    )


if __name__ == "__main__":
    main()
