"""How the count gate's choice rule carries to validation rows it never saw: each rule chooses a grid point on the
rows the gate is chosen on, and is scored on the rest of the frozen ``overall`` validation rows.

The run's own stage-2 model scores every ``overall`` validation row once (``--cache`` keeps those scores for
later calls); each rule then picks a point of the gate's grid (``llm.training.gate_points``) from the Hit@1
figures on the first ``stage2.training.gate_valid_rows`` rows (the rows the run chose its gate on), and the chosen
point is scored on the remaining rows, beside the gate the run shipped (``shipped``: chosen on the same rows but
before joint training moved the projectors, which the head's inputs depend on, so the rules' choices on the final
scores can differ from it), by the target's popularity group as the test scenarios split them (``cold``/``warm``
``item_popularity`` groups), each with its paired difference to ``cf`` (the grid's first point) and to the
``text_overlap`` floor (a 95% paired bootstrap). No test row is read.

    python bench/gate_rules.py --out bench/results/gate_rules_beauty.json
    python bench/gate_rules.py --env video_games --out bench/results/gate_rules_video_games.json
    python bench/gate_rules.py --cache scores.npz --fit-l2 0.001 0.01 --row-features   # learned fusions too

Prints one JSON line; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import check_cache, emit, run_catalog, run_key, title_vector_frame

from allmrec_pipeline import metrics
from allmrec_pipeline.llm.inputs import (
    item_table,
    item_titles,
    load_llm,
    row_samples,
    title_vector_table,
    user_vectors,
)
from allmrec_pipeline.llm.recommender import fuse_inputs, recommender_from_checkpoint
from allmrec_pipeline.llm.training import gate_points
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.evaluate_scenarios.scorers import Domain, score_cf
from allmrec_pipeline.progress import progress_bar


def _hits(inputs: torch.Tensor, cold: torch.Tensor, gate: torch.Tensor, targets: np.ndarray) -> np.ndarray:
    scores = fuse_inputs(inputs, cold, gate).numpy()
    return metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]


def _figures(hits: np.ndarray, cold_target: np.ndarray, warm_group: np.ndarray) -> dict[str, float]:
    """Hit@1 over all rows, over cold targets (the gate's count), the other targets, and the targets of the
    ``warm`` popularity group (the ``warm_item`` scenario's)."""

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    return {
        "all": mean(hits),
        "cold": mean(hits[cold_target]),
        "other": mean(hits[~cold_target]),
        "warm_group": mean(hits[warm_group]),
    }


# each rule: (figures of every grid point, the CF weighting's figures, the points) -> the chosen point's index; the first
# of equals wins, as in llm.training.choose_gate
def _current(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """The pipeline's rule: the mean of Hit@1 over all rows and over cold targets, among the points whose Hit@1 on
    the other targets is at least the CF weighting's."""
    allowed = [i for i, f in enumerate(table) if f["other"] >= cf["other"]]
    return max(allowed, key=lambda i: (table[i]["all"] + table[i]["cold"]) / 2)


def _balanced(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """The mean of Hit@1 over cold targets and over the other targets (each half the say), same guard."""
    allowed = [i for i, f in enumerate(table) if f["other"] >= cf["other"]]
    return max(allowed, key=lambda i: (table[i]["cold"] + table[i]["other"]) / 2)


def _balanced_unguarded(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """The mean of Hit@1 over cold targets and over the others, no guard."""
    return max(range(len(table)), key=lambda i: (table[i]["cold"] + table[i]["other"]) / 2)


def _warm_guarded(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """The pipeline's merit, with the guard on the warm popularity group's targets instead of the count's
    other targets: Hit@1 on them at least the CF weighting's."""
    allowed = [i for i, f in enumerate(table) if f["warm_group"] >= cf["warm_group"]]
    return max(allowed, key=lambda i: (table[i]["all"] + table[i]["cold"]) / 2)


def _cf_for_warm(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """The pipeline's merit among the points that weigh the other candidates as the CF model does (head and
    overlap 0 for them): only the cold candidates' weights are chosen, with the pipeline's guard."""
    allowed = [i for i, g in enumerate(points) if not g[0, 1:].any() and table[i]["other"] >= cf["other"]]
    return max(allowed, key=lambda i: (table[i]["all"] + table[i]["cold"]) / 2)


def _all_rows(table: list[dict], cf: dict, points: list[torch.Tensor]) -> int:
    """Hit@1 over all rows alone."""
    return max(range(len(table)), key=lambda i: table[i]["all"])


RULES = {
    "current": _current,
    "balanced": _balanced,
    "balanced_unguarded": _balanced_unguarded,
    "warm_guarded": _warm_guarded,
    "cf_for_warm": _cf_for_warm,
    "all": _all_rows,
}


def _score(
    args: argparse.Namespace, scenario: str = "overall", split: str = "valid", max_rows: int | None = None
) -> tuple:
    """Score every ``split`` row (validation rows by default; the first ``max_rows``) of ``scenario`` with the
    run's stage-2 model: the gate's inputs ``(N, C, K)``, the
    cold mask ``(N, C)``, the targets, the targets' popularity groups, the model's gate, the number of rows the
    run chose its gate on, whether the gate weighs the overlap, the runtime parameters, the candidates' training
    counts, each row's taste (``_taste``) and whether the gate weighs the title cosine."""
    catalog, runtime = run_catalog(args.params, env=args.env)
    load = catalog.load
    stage2 = load("params:stage2")
    item_index, items = load("item_index"), load("items")
    rows = _valid_rows(load("eval_candidates"), scenario, split).head(max_rows)
    backbone = load_backbone(load("cf_model"), expected_n_items=len(item_index))
    popularity = load("item_popularity")
    counts = popularity_counts(popularity, len(item_index))
    domain = Domain(titles=item_titles(items, item_index))
    cf = score_cf(backbone, rows, domain).scores
    samples = row_samples(rows, user_vectors(backbone, list(rows["history"])), cf, counts)
    _, model, tokenizer = load_llm(load("params:llms"), load("params:llm"))
    table = item_table(stage2["item_source"], load("joint_item_embeddings"), backbone)
    recommender = recommender_from_checkpoint(
        load("stage2_model"),
        model,
        tokenizer,
        table,
        domain.titles,
        title_vectors=title_vector_table(title_vector_frame(catalog), len(item_index)),
    )
    if not recommender.gated:
        raise SystemExit("the run's stage-2 model has no count gate (stage2.model.gate_max_count is null)")
    with torch.no_grad():
        starts = progress_bar(range(0, len(samples), 4), desc="head scores", unit="batch")
        head = torch.cat([recommender.head_scores(samples[i : i + 4]) for i in starts])
        inputs = recommender.gate_inputs(head, samples).cpu()
        cold = recommender.cold_mask(samples).cpu()
    targets = np.array([s.target_pos for s in samples])
    groups = rows["target_item_idx"].map(popularity.set_index("item_idx")["group"]).to_numpy().astype(str)
    n_choose = int(stage2["training"]["gate_valid_rows"])
    gate = recommender.gate.detach().cpu().clone()
    candidate_counts = np.stack([s.counts.numpy() for s in samples]).astype(np.float32)
    taste = _taste(rows, counts, int(stage2["model"]["n_history"]))
    return (
        inputs, cold, targets, groups, gate, n_choose, recommender.config.gate_text_overlap, runtime,
        candidate_counts, taste, recommender.config.gate_text_cosine,
    )  # fmt: skip


def _valid_rows(candidates: pd.DataFrame, scenario: str = "overall", split: str = "valid") -> pd.DataFrame:
    """The frozen validation rows of ``scenario`` (``split="test"``: its test rows), in their stored order (the
    gate is chosen on the first ``overall`` validation rows)."""
    rows = candidates[(candidates["scenario"] == scenario) & (candidates["split"] == split)]
    if rows.empty:
        raise SystemExit(
            f"eval_candidates has no {scenario} {split} rows: run split_sequences first"
            + ("" if scenario == "overall" else " (a split made before it derived them for every split)")
        )
    return rows.reset_index(drop=True)


def _taste(rows: pd.DataFrame, counts: np.ndarray, n_history: int) -> np.ndarray:
    """Each row's taste for popular items: the mean ``log1p`` training count of its ``n_history`` most recent
    history items (0 without history)."""
    taste = np.zeros(len(rows))
    for row, history in enumerate(rows["history"]):
        recent = [int(i) for i in history if int(i) != 0][-n_history:]
        taste[row] = np.log1p(counts[recent]).mean() if recent else 0.0
    return taste


def _cached_taste(args: argparse.Namespace, n_rows: int) -> np.ndarray:
    """``_taste`` from the run's catalog, for a cache written before it was kept (no LLM pass)."""
    catalog, _ = run_catalog(args.params, env=args.env)
    rows = _valid_rows(catalog.load("eval_candidates"))
    if len(rows) != n_rows:
        raise SystemExit(
            f"the cache holds {n_rows} rows, the run's eval_candidates {len(rows)}: not the same run"
        )
    counts = popularity_counts(catalog.load("item_popularity"), len(catalog.load("item_index")))
    return _taste(rows, counts, int(catalog.load("params:stage2")["model"]["n_history"]))


def _count_features(inputs: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """The learned fusion's per-candidate features ``(N, C, K·2)``: each gate input (z(CF), z(head), z(overlap))
    alone and times ``log1p(count) / log1p(max count)``, so that its weight ``w_k0 + w_k1 · log1p(count) / ...``
    moves smoothly with the candidate's training interactions instead of jumping at one threshold."""
    scale = np.log1p(counts).max() or 1.0
    basis = torch.stack(
        [torch.ones(counts.shape), torch.from_numpy(np.log1p(counts) / scale).float()], dim=-1
    )  # (N, C, 2)
    return (inputs[..., :, None] * basis[..., None, :]).flatten(-2)


def _row_features(inputs: torch.Tensor, cold: torch.Tensor, taste: np.ndarray, n_choose: int) -> torch.Tensor:
    """The fusion with what a row says about its target's kind: each gate input with one weight for cold candidates
    and one for the rest (the count gate's form), a cold candidate's offset, and that offset and the cold weights
    times two row features, standardised on the choice rows: the user's taste for popular items (``taste``: the mean
    ``log1p`` training count of the row's recent history items) and the CF model's confidence (the highest z(CF)
    among the row's candidates that are not cold). ``(N, C, 3·K + 3)``."""
    flag = cold.float()[..., None]  # (N, C, 1)
    confidence = torch.where(~cold, inputs[..., 0], torch.full_like(inputs[..., 0], -1e9)).amax(-1).numpy()

    def standard(values: np.ndarray) -> torch.Tensor:
        spread = values[:n_choose].std() or 1.0
        return torch.from_numpy((values - values[:n_choose].mean()) / spread).float()[:, None, None]

    rows = [standard(taste), standard(confidence)]
    grouped = torch.cat([inputs * (1 - flag), inputs * flag], dim=-1)
    offset = torch.cat([flag, *(flag * r for r in rows)], dim=-1)
    return torch.cat([grouped, offset, *(inputs * flag * r for r in rows)], dim=-1)


def _fit_fusion(
    features: torch.Tensor,
    targets: np.ndarray,
    rows: np.ndarray,
    l2: float,
    balance: np.ndarray | None = None,
) -> torch.Tensor:
    """A learned fusion ``features @ w`` (``(N, C, F)``; the first feature, z(CF), starts at weight 1, the others
    at 0), fitted on ``rows`` by listwise cross-entropy with L2 ``l2``. ``balance`` (a boolean per row, e.g. a cold
    target): the rows it marks and the others each weigh half the loss, however few they are. Returns the scores
    of every row ``(N, C)``."""
    weights = torch.zeros(features.shape[-1], requires_grad=True)
    with torch.no_grad():
        weights[0] = 1.0  # start at the CF weighting
    chosen = torch.from_numpy(rows)
    target = torch.from_numpy(targets[rows]).long()
    optimizer = torch.optim.LBFGS([weights], max_iter=200, line_search_fn="strong_wolfe")

    row_weight = torch.full((len(target),), 1.0 / len(target))
    if balance is not None:
        marked = torch.from_numpy(balance[rows])
        for group in (marked, ~marked):
            row_weight[group] = 0.5 / max(int(group.sum()), 1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        losses = torch.nn.functional.cross_entropy(features[chosen] @ weights, target, reduction="none")
        loss = (row_weight * losses).sum() + l2 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (features @ weights).detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="the Kedro environment of the run (e.g. video_games)")
    parser.add_argument("--params", default="", help="runtime params as kedro run takes them (key=value,...)")
    parser.add_argument("--seed", type=int, default=42, help="the bootstrap's seed")
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    parser.add_argument(
        "--cache",
        type=Path,
        help="an .npz of the rows' scores: written on the first call, read on the next ones",
    )
    parser.add_argument(
        "--fit-l2",
        type=float,
        nargs="*",
        default=[],
        help="also fit the learned per-candidate fusion (_fit_fusion) on the choice rows with each L2 strength, "
        "once with every row weighed alike and once with cold-target rows weighing half the loss",
    )
    parser.add_argument(
        "--row-features",
        action="store_true",
        help="with --fit-l2: also fit the fusion with what a row says about its target's kind (_row_features: "
        "the user's taste for popular items, the CF model's confidence)",
    )
    args = parser.parse_args()

    if args.cache and args.cache.exists():  # the scores of an earlier call: no LLM pass
        cached = np.load(args.cache, allow_pickle=False)
        check_cache(args.cache, cached, lambda: run_key(run_catalog(args.params, env=args.env)[0]))
        inputs, cold = torch.from_numpy(cached["inputs"]), torch.from_numpy(cached["cold"])
        targets, groups, shipped = cached["targets"], cached["groups"], torch.from_numpy(cached["gate"])
        candidate_counts = cached.get("counts", None)
        taste = cached.get("taste", None)
        n_choose, overlap, runtime = (
            int(cached["n_choose"]),
            bool(cached["overlap"]),
            {"cache": str(args.cache)},
        )
        cosine = bool(cached.get("gate_cosine", False))
    else:
        (
            inputs,
            cold,
            targets,
            groups,
            shipped,
            n_choose,
            overlap,
            runtime,
            candidate_counts,
            taste,
            cosine,
        ) = _score(args)
        if args.cache:
            np.savez(
                args.cache, inputs=inputs.numpy(), cold=cold.numpy(), targets=targets, groups=groups,
                gate=shipped.numpy(), n_choose=n_choose, overlap=overlap, counts=candidate_counts, taste=taste,
                gate_cosine=cosine, run_key=run_key(run_catalog(args.params, env=args.env)[0]),
            )  # fmt: skip
    if args.row_features and taste is None:
        taste = _cached_taste(args, len(targets))
    cold_target = cold.numpy()[np.arange(len(targets)), targets]
    choose, rest = np.arange(len(targets)) < n_choose, np.arange(len(targets)) >= n_choose
    points = gate_points(overlap, cosine)
    hits = [_hits(inputs, cold, gate, targets) for gate in points]
    warm = groups == "warm"
    on_choose = [_figures(h[choose], cold_target[choose], warm[choose]) for h in hits]
    overlap_only = torch.zeros_like(points[0])
    overlap_only[:, 2] = 1.0  # z(text_overlap) alone (the column after z(CF), z(head)): the floor's ranking
    floors = {"cf": hits[0], "text_overlap": _hits(inputs, cold, overlap_only, targets)}
    views = {"all": rest, "cold_item": rest & (groups == "cold"), "warm_item": rest & (groups == "warm")}
    out = {}
    # the gate the run chose (on the head before joint training moved the projectors), then each rule's choice
    # on the final model's scores
    choices = {
        "shipped": shipped,
        **{name: points[rule(on_choose, on_choose[0], points)] for name, rule in RULES.items()},
    }
    fitted, forms = {}, {}
    if candidate_counts is not None:  # the learned fusions, one per L2 strength, fitted on the choice rows
        forms["fitted"] = _count_features(inputs, candidate_counts)
    if args.row_features:
        forms["fitted_rows"] = _row_features(inputs, cold, taste, int(choose.sum()))
    for form, features in forms.items():
        for l2 in args.fit_l2:
            for suffix, balance in (("", None), ("_balanced", cold_target)):
                scores = _fit_fusion(features, targets, choose, l2, balance).numpy()
                hits_of = metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]
                fitted[f"{form}{suffix}_l2_{l2:g}"] = hits_of
    for name, gate in [*choices.items(), *fitted.items()]:
        chosen = fitted[name] if name in fitted else _hits(inputs, cold, gate, targets)
        on_rows = _figures(chosen[choose], cold_target[choose], warm[choose])
        entry = {"gate": None if name in fitted else gate.tolist(), "on_choose_rows": on_rows}
        for view, keep in views.items():
            entry[view] = {"n": int(keep.sum()), "hit_at_1": float(chosen[keep].mean())}
            for floor, values in floors.items():
                paired = metrics.paired_bootstrap(chosen[keep], values[keep], seed=args.seed)
                entry[view][f"minus_{floor}"] = [paired["difference"], paired["ci_low"], paired["ci_high"]]
        out[name] = entry
    emit(
        {
            "bench": "gate_rules",
            "env": args.env,
            "params": runtime,
            "choose_rows": int(choose.sum()),
            "choose_cold_targets": int(cold_target[choose].sum()),
            "scored_rows": int(rest.sum()),
            "floors": {
                view: {f: float(v[keep].mean()) for f, v in floors.items()} for view, keep in views.items()
            },
            "rules": out,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
