"""Stage-2 training: projectors (and head) learn while the LLM stays frozen; the best epoch is kept."""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from allmrec_pipeline import distributed, metrics
from allmrec_pipeline.models.projectors import Padded, cat_features
from allmrec_pipeline.progress import progress_bar
from allmrec_pipeline.resume import TrainingCheckpoints, restore_rng, rng_state

from .gate_bounds import SCENARIOS, GateBounds, choose_gate_by_bounds
from .recommender import Sample, SoftPromptRecommender, fuse_inputs, gate_weights
from .text_matcher import MatcherTraining

logger = logging.getLogger(__name__)


@dataclass
class Stage2TrainingConfig:
    """Stage 2's loop; no field has a default: the values come from ``stage2.training`` (conf/base)."""

    epochs: int  # (int >= 1) passes over the (capped) training users
    batch_size: int  # (int >= 1) samples per forward pass
    grad_accumulation: int  # (int >= 1) forward passes per optimizer step
    lr: float  # (float > 0) Adam learning rate of the projectors
    max_train_users: int | None  # (int >= 1|null) seeded cap on training users; null: all
    targets: str  # (str) held_out: the item after the training sequence | last_training_item: its last item
    n_negatives: (
        int  # (int >= 1) uniformly sampled never-touched items per training sample, re-drawn each epoch
    )
    max_valid_rows: int  # (int >= 0) validation rows scored per epoch to pick the best (if epochs > 1)
    head_warmup_epochs: (
        int  # (int >= 0) embedding_head: epochs fitting the head alone on frozen features; 0: off
    )
    head_warmup_users: (
        int | None
    )  # (int >= 1|null) embedding_head: users the warm-up reads; null: max_train_users
    head_lr: (
        float | None
    )  # (float >= 0|null) embedding_head: the head's lr in joint training; 0: fixed; null: lr
    gate_valid_rows: (
        int  # (int >= 0) the count gate: chosen on this many validation rows; 0: on the warm-up's
    )
    matcher_steps: int  # (int >= 0) gate_cosine_rank: the text matcher's optimizer steps; 0: left untrained
    matcher_batch_size: int  # (int >= 1) the text matcher: transitions per step
    matcher_negatives: int  # (int >= 1) the text matcher: uniformly drawn negatives per transition
    matcher_lr: float  # (float > 0) the text matcher: Adam's learning rate
    matcher_max_count: (
        int | None
    )  # (int >= 0 | null) the text matcher: next items with at most this many interactions; null: all
    gate_choice: (
        str  # (str) nested: on the overall validation rows | bounds: on three scenarios' (llm.gate_bounds)
    )
    gate_bounds: dict[str, float] | None  # (dict) gate_choice bounds: GateBounds' fields
    # (str) gate_choice bounds: best: the largest smallest slack | centroid: the admissible points' mean |
    # merit: the admissible point with the best mean Hit@1 over the three scenarios
    gate_point: str

    @property
    def bounds(self) -> GateBounds:
        """``gate_bounds`` as the bounds rule reads them."""
        if self.gate_bounds is None:
            raise ValueError("stage2.training.gate_choice bounds needs stage2.training.gate_bounds")
        return GateBounds(**self.gate_bounds)

    @property
    def matcher(self) -> MatcherTraining:
        """The text matcher's fit (``llm.text_matcher.train_text_matcher``)."""
        return MatcherTraining(
            self.matcher_steps,
            self.matcher_batch_size,
            self.matcher_negatives,
            self.matcher_lr,
            self.matcher_max_count,
        )

    @property
    def valid_rows_read(self) -> int:
        """How many of the first frozen validation rows stage 2 chooses on (its epoch and its count gate)."""
        return max(self.max_valid_rows, self.gate_valid_rows)


@dataclass
class Stage2Result:
    step_loss: list[float] = field(default_factory=list)
    step_samples_per_s: list[float] = field(default_factory=list)
    epoch_valid_hit_at_1: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)  # the mean step loss of each epoch
    head_warmup: dict = field(default_factory=dict)  # warm_up_head's figures, when it ran
    best_epoch: int = 0
    seconds: float = 0.0
    resumed_from: tuple[int, int] = (
        0,
        0,
    )  # (epoch, batches done in it) a rerun continued after; (0, 0): afresh


@torch.no_grad()
def candidate_scores(
    model: SoftPromptRecommender, samples: list[Sample], batch_size: int = 4, desc: str | None = None
) -> np.ndarray:
    """Scores ``(R, C)`` of every sample's candidates, in eval mode; ``desc`` labels a progress bar (none
    without it)."""
    model.eval()
    starts = progress_bar(range(0, len(samples), batch_size), desc=desc, unit="batch", disable=desc is None)
    return torch.cat([model.scores(samples[i : i + batch_size]).float().cpu() for i in starts]).numpy()


@torch.no_grad()
def frozen_head_features(
    model: SoftPromptRecommender, samples: list[Sample], batch_size: int = 4, progress: bool = False
) -> tuple[torch.Tensor | Padded, torch.Tensor | Padded]:
    """The head's inputs for every sample (``head_features``, e.g. ``(N, H)`` and ``(N, C, H)``): one no-grad
    forward pass each."""
    model.eval()
    starts = range(0, len(samples), batch_size)
    bar = progress_bar(starts, desc="stage2 head warm-up features", unit="batch", disable=not progress)
    parts = [model.head_features(samples[i : i + batch_size]) for i in bar]
    return cat_features([p[0] for p in parts]), cat_features([p[1] for p in parts])


def holdout_rows(n: int, holdout: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded ``(held, fit)`` split of ``n`` rows, ``holdout`` of them held out (at least one when > 0)."""
    order = torch.randperm(n, generator=generator)
    n_held = max(1, round(n * holdout)) if holdout > 0 else 0
    return order[:n_held], order[n_held:]


def fit_head(
    head: torch.nn.Module,
    last: torch.Tensor,
    cand: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    seed: int,
    holdout: float = 0.2,
    weight_decay: float = 0.0,
    prior: torch.Tensor | None = None,
) -> dict:
    """Fit ``head`` alone on cached features; keep the epoch (0: its initialisation) with the lowest loss on a
    seeded held-out ``holdout`` share, or, with ``holdout=0``, fit on every sample for exactly ``epochs``.
    ``prior`` ``(N, C)`` is added to the head's scores (``cf_skip``: the head fits the correction).
    Returns the kept epoch and the held-out loss by epoch (empty without a held-out share)."""
    generator = torch.Generator().manual_seed(seed)
    held, fit = holdout_rows(len(targets), holdout, generator)
    n_held = len(held)

    def logits(rows: torch.Tensor) -> torch.Tensor:
        scores = head(last[rows], cand[rows])
        return scores if prior is None else scores + prior[rows]

    def held_loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(logits(held), targets[held]).item()

    # AdamW with no decay is Adam, step for step; the decay is a knob of bench/stage2_head_probe.py (it did not
    # help there: the held-out share stops the fit within a few epochs, before a decay can act)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = [held_loss()] if n_held else []  # by epoch; 0 is the initialisation
    best_state, best_epoch = copy.deepcopy(head.state_dict()), 0
    for epoch in range(1, epochs + 1):
        for chunk in fit[torch.randperm(len(fit), generator=generator)].split(16):
            loss = F.cross_entropy(logits(chunk), targets[chunk])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if n_held:
            losses.append(held_loss())
            if losses[-1] < losses[best_epoch]:
                best_state, best_epoch = copy.deepcopy(head.state_dict()), epoch
    if n_held:
        head.load_state_dict(best_state)
    else:
        best_epoch = epochs
    return {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "held_out_loss_start": losses[0] if losses else None,
        "held_out_loss_best": losses[best_epoch] if losses else None,
        "held_out_loss": losses,
    }


def warm_up_head(
    model: SoftPromptRecommender,
    samples: list[Sample],
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 4,
    holdout: float = 0.2,
    progress: bool = False,
    gate_samples: list[Sample] | dict[str, list[Sample]] | None = None,
    gate_bounds: GateBounds | None = None,
    gate_point: str = "best",
) -> dict:
    """Fit the ``embedding_head`` alone on frozen features of ``samples`` before joint training.

    The features cost one forward pass per sample and no backward pass through the LLM (under half of a
    joint step on a CPU), after which each head epoch costs milliseconds (``fit_head``). With the count gate, the
    gate is chosen on ``gate_samples`` (validation rows the head never saw) when given, else on ``samples``, each
    scored out of fold: a list, by ``choose_gate``; by scenario (``gate_bounds.SCENARIOS``), against
    ``gate_bounds`` by ``choose_gate_by_bounds`` (``gate_point``: ``best``, ``centroid`` or ``merit``). Returns
    the figures: best epoch, held-out loss by epoch, seconds, the gate.
    """
    if model.head is None:
        raise ValueError("warm_up_head needs the embedding_head objective")
    started = time.perf_counter()
    last, cand = frozen_head_features(model, samples, batch_size, progress)
    targets = torch.as_tensor([s.target_pos for s in samples], device=last.device)
    feature_seconds = time.perf_counter() - started
    prior = model.cf_prior(samples) if model.head_corrects_cf else None
    initial = copy.deepcopy(model.head.state_dict())
    figures = fit_head(model.head, last, cand, targets, epochs, lr, seed, holdout, prior=prior)
    if model.gated and isinstance(gate_samples, dict):
        if gate_bounds is None:
            raise ValueError("the gate chosen on three validation scenarios needs its bounds (gate_bounds)")
        model.eval()
        scores = {s: _head_scores(model, gate_samples[s], batch_size) for s in SCENARIOS}
        points = model_gate_points(model.config)
        chosen = choose_gate_by_bounds(model, scores, gate_samples, points, gate_bounds, seed, gate_point)
        figures["gate"] = {**chosen, "chosen_on": "validation_scenarios"}
    elif model.gated and gate_samples:
        model.eval()
        scores = _head_scores(model, gate_samples, batch_size)
        figures["gate"] = {**choose_gate(model, scores, gate_samples), "chosen_on": "validation_rows"}
    elif model.gated:
        scores = out_of_fold_scores(
            model.head, initial, last, cand, targets, figures["best_epoch"], lr, seed, holdout
        )
        figures["gate"] = {**choose_gate(model, scores, samples), "chosen_on": "warmup_samples"}
    return {
        "samples": len(samples),
        **figures,
        "feature_seconds": feature_seconds,
        "seconds": time.perf_counter() - started,
    }


@torch.no_grad()
def _head_scores(model: SoftPromptRecommender, samples: list[Sample], batch_size: int) -> torch.Tensor:
    """The head's scores ``(N, C)`` of ``samples``, ``batch_size`` at a time."""
    return torch.cat(
        [model.head_scores(samples[i : i + batch_size]) for i in range(0, len(samples), batch_size)]
    )


def out_of_fold_scores(
    head: torch.nn.Module,
    initial: dict,
    last: torch.Tensor,
    cand: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    seed: int,
    holdout: float,
) -> torch.Tensor:
    """Head scores ``(N, C)`` of every warm-up sample by a head that never fitted it (cross-fitting).

    The samples fall in folds of the held-out share's size: the first is ``fit_head``'s held-out share, scored
    by the fitted ``head``; each other fold is scored by a head started from ``initial`` and fitted for the kept
    number of ``epochs`` on the rest. The count gate is then chosen on all samples, not only on one fold.
    """
    if holdout <= 0:
        raise ValueError(
            "the count gate is chosen on held-out head scores: the warm-up's holdout must be > 0"
        )
    held, rest = holdout_rows(len(targets), holdout, torch.Generator().manual_seed(seed))
    scores = torch.empty(cand.shape[:2], device=cand.device)
    with torch.no_grad():
        scores[held] = head(last[held], cand[held]).float()
    for fold in rest.tensor_split(max(1, round(len(rest) / len(held)))):
        others = torch.cat([held, rest[~torch.isin(rest, fold)]])
        fresh = copy.deepcopy(head)
        fresh.load_state_dict(initial)
        fit_head(fresh, last[others], cand[others], targets[others], epochs, lr, seed, holdout=0)
        with torch.no_grad():
            scores[fold] = fresh(last[fold], cand[fold]).float()
    return scores


# the count gate's candidates (cold CF weight, cold head weight, other head weight; the other CF weight is 1), in
# the order ties are broken: the CF model's weighting first, then less text before more
GATE_GRID = tuple(itertools.product((1.0, 0.5, 0.0), (0.0, 0.5, 1.0, 2.0, 3.0), (0.0, 0.25, 0.5, 1.0)))
# gate_text_overlap: the weights of z(text_overlap) for cold candidates and for the rest, less text first
OVERLAP_GRID = tuple(itertools.product((0.0, 0.5, 1.0, 2.0), (0.0, 0.25, 0.5)))
# gate_text_cosine: the weights of z(text_cosine) for the other candidates and for cold ones, less text first
COSINE_GRID = tuple(itertools.product((0.0, 0.25, 0.5), (0.0, 0.5, 1.0, 2.0)))
# gate_cooccurrence: the weights of z(co-occurrence) for the other candidates and for cold ones, less first
COOCCURRENCE_GRID = tuple(itertools.product((0.0, 0.25, 0.5, 1.0), (0.0, 0.5)))


def gate_points(overlap: bool, cosine: bool = False, cooccurrence: bool = False) -> list[torch.Tensor]:
    """The count gate's candidate weights, ``(2, K)`` each (rows: other candidates, cold ones; columns: z(CF),
    z(head), then z(text_overlap) with ``overlap``, z(text_cosine) with ``cosine`` and z(co-occurrence) with
    ``cooccurrence``), in the order ties are broken: ``GATE_GRID``, each point crossed with ``OVERLAP_GRID``
    (``overlap``), each of those with ``COSINE_GRID`` (``cosine``), each of those with ``COOCCURRENCE_GRID``
    (``cooccurrence``)."""
    overlap_weights = OVERLAP_GRID if overlap else ((None, None),)
    cosine_weights = COSINE_GRID if cosine else ((None, None),)
    cooccurrence_weights = COOCCURRENCE_GRID if cooccurrence else ((None, None),)
    points = []
    for cold_cf, cold_head, warm_head in GATE_GRID:
        for cold_text, warm_text in overlap_weights:
            for warm_cosine, cold_cosine in cosine_weights:
                for warm_co, cold_co in cooccurrence_weights:
                    warm = [1.0, warm_head, warm_text, warm_cosine, warm_co]
                    cold = [cold_cf, cold_head, cold_text, cold_cosine, cold_co]
                    points.append(
                        torch.tensor([[w for w in warm if w is not None], [c for c in cold if c is not None]])
                    )
    return points


def model_gate_points(config) -> list[torch.Tensor]:
    """``gate_points`` for the inputs a stage-2 model's gate weighs (``config``: its ``Stage2Config``)."""
    return gate_points(config.gate_text_overlap, config.gate_text_cosine, config.gate_cooccurrence)


@torch.no_grad()
def gate_table(
    model: SoftPromptRecommender,
    head_scores: torch.Tensor,
    samples: list[Sample],
    points: list[torch.Tensor] | None = None,
) -> tuple[list[tuple[torch.Tensor, dict[str, float]]], np.ndarray]:
    """Every point of ``points`` (default: the model's ``gate_points``) as a ``gate`` tensor with its Hit@1 on
    ``samples`` over all of them, over those whose target is cold and over the others (NaN for an empty group),
    and the cold-target mask ``(N,)``."""
    targets = np.array([s.target_pos for s in samples])
    cold_candidates = model.cold_mask(samples)
    cold = cold_candidates.cpu().numpy()[np.arange(len(samples)), targets]
    inputs = model.gate_inputs(head_scores, samples)  # computed once for every point

    def mean(hits: np.ndarray) -> float:
        return float(hits.mean()) if len(hits) else float("nan")

    if points is None:
        points = model_gate_points(model.config)
    table = []
    for gate in points:
        scores = fuse_inputs(inputs, cold_candidates, gate).cpu().numpy()
        hits = metrics.scores_per_row(scores, targets, ("hit_at_1",))["hit_at_1"]
        table.append((gate, {"all": mean(hits), "cold": mean(hits[cold]), "other": mean(hits[~cold])}))
    return table, cold


def choose_gate(model: SoftPromptRecommender, head_scores: torch.Tensor, samples: list[Sample]) -> dict:
    """Set ``model.gate`` to the ``gate_points`` point with the best mean of two Hit@1 figures on ``samples``, over
    all of them and over those whose target is cold (the ``overall`` and ``cold_item`` scenarios), among the
    points whose Hit@1 on the other samples (a target the CF model has seen more often) is at least the CF
    model's weighting's (the grid's first point, which weighs the head 0 everywhere).

    Natural samples hold few cold targets, so Hit@1 over all of them alone keeps the CF model's weighting for
    cold candidates too; the mean gives the cold targets an equal say, and the floor lets the gate lift cold
    candidates only as far as that costs the other targets nothing (lifted cold negatives push them down).
    Without a cold target the choice is made on all samples. With ``gate_text_cosine`` the choice is nested: first
    among the points that weigh z(text_cosine) 0, then, that point fixed, among its ``COSINE_GRID`` weights, by
    the same merit and floor (12 candidates instead of 8,640 at once: the 300 rows a gate is chosen on cannot
    tell that many points apart, and the joint choice lost cold users on Beauty's test rows; see
    docs/experiments.md); with ``gate_cooccurrence`` its ``COOCCURRENCE_GRID`` weights are chosen the same way,
    last. Returns the weights and the Hit@1 figures of the choice and of the CF model's weighting.
    """
    # the later inputs, each with its grid and column, chosen one after the other in this order
    later = [
        (grid, column)
        for grid, column, on in (
            (COSINE_GRID, 2 + int(model.config.gate_text_overlap), model.config.gate_text_cosine),
            (COOCCURRENCE_GRID, -1, model.config.gate_cooccurrence),
        )
        if on
    ]
    points = gate_points(model.config.gate_text_overlap)
    if later:  # first the points without the later inputs: their columns weighed 0
        points = [torch.cat([p, torch.zeros(2, len(later))], dim=1) for p in points]
    table, cold = gate_table(model, head_scores, samples, points)
    if not cold.any():
        logger.warning("No sample the count gate is chosen on has a cold target: it is chosen on all of them")
    floor = table[0][1]["other"]  # the first point: the CF model's weighting

    def merit(entry) -> float:
        figures = entry[1]
        return figures["all"] if not cold.any() else (figures["all"] + figures["cold"]) / 2

    def best(entries):  # the CF weighting always qualifies; max keeps the first of equals
        return max([e for e in entries if cold.all() or e[1]["other"] >= floor], key=merit)

    gate, figures = best(table)
    for grid, column in later:  # then each later input's weights, the rest of the point fixed ((0, 0) first)
        weighted = []
        for warm_weight, cold_weight in grid:
            point = gate.clone()
            point[0, column], point[1, column] = warm_weight, cold_weight
            weighted.append(point)
        gate, figures = best(gate_table(model, head_scores, samples, weighted)[0])
    model.gate.copy_(gate)
    return {
        **gate_weights(model.config, gate),
        "samples": len(samples),
        "cold_targets": int(cold.sum()),
        **{f"hit_at_1_{k}": v for k, v in figures.items()},
        **{f"cf_hit_at_1_{k}": v for k, v in table[0][1].items()},
    }


def joint_optimizer(model: SoftPromptRecommender, config: Stage2TrainingConfig) -> torch.optim.Adam:
    """Adam over the trainable parameters: the projectors at ``lr``, the head (if any) at ``head_lr``; a head
    at 0 is left out, so its weights stay exactly as the warm-up left them."""
    head_lr = config.lr if config.head_lr is None else config.head_lr
    if isinstance(head_lr, bool) or not isinstance(head_lr, (int, float)) or head_lr < 0:
        raise ValueError(
            f"stage2.training.head_lr must be null (lr), 0 (head fixed) or more, not {config.head_lr!r}"
        )
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for name, p in trainable if not name.startswith("head.")], "lr": config.lr},
        {"params": [p for name, p in trainable if name.startswith("head.") and head_lr > 0], "lr": head_lr},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]])


def train_stage2(
    model: SoftPromptRecommender,
    make_samples: Callable[[int], list[Sample]],
    valid: list[Sample],
    config: Stage2TrainingConfig,
    seed: int,
    evaluate: Callable[[np.ndarray, list[Sample]], float],
    progress: bool = True,
    checkpoints: TrainingCheckpoints | None = None,
    every_steps: int = 200,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    gate_samples: list[Sample] | dict[str, list[Sample]] | None = None,
) -> Stage2Result:
    """Train in place; on return ``model`` holds the best epoch's trainable weights.

    Args:
        model: The recommender (frozen LLM inside).
        make_samples: ``epoch -> samples`` (negatives re-drawn each epoch by the caller's seeded generator), in a
            seeded random order: joint training takes the first ``max_train_users``, the head's warm-up the first
            ``head_warmup_users``.
        valid: Frozen validation samples.
        config: Loop settings.
        seed: Seeds the projectors' dropout-free init order and the batch order.
        evaluate: ``(scores, samples) -> Hit@1`` on the validation samples.
        progress: Show a progress bar.
        checkpoints: Where the loop's state (trainable weights, optimizer, generators, the head warm-up's
            result, the best epoch so far, curves) is saved every ``every_steps`` optimizer steps and at each
            epoch's end; a checkpoint found at the start is resumed from (the warm-up is not redone), ending as
            an uninterrupted run would. Removed when training ends.
        every_steps: Optimizer steps between checkpoints inside an epoch.
        on_epoch: ``(epoch, figures)`` as each epoch ends (its mean training loss and validation Hit@1).
        gate_samples: Frozen validation samples the count gate is chosen on (``gate_valid_rows`` of them); by
            scenario (``gate_choice: bounds``): against ``config.bounds``; ``None`` or empty: the warm-up's samples.

    Under ``torchrun`` (``distributed``) each rank computes its share of every batch (``batch_size`` is the global
    batch) and the gradients are summed before each step; the head's warm-up and the validation scoring run whole
    on every rank.
    """
    if config.head_warmup_epochs < 0:
        raise ValueError(
            f"stage2.training.head_warmup_epochs must be 0 (off) or more, not {config.head_warmup_epochs}"
        )
    optimizer = joint_optimizer(model, config)  # checks head_lr; builds no parameters, so the seed is unmoved
    if model.gated and not config.head_warmup_epochs:
        raise ValueError(
            "the count gate (stage2.model.gate_max_count) is chosen on the head warm-up's samples: "
            "set stage2.training.head_warmup_epochs above 0, or gate_max_count to null"
        )
    if config.head_lr == 0 and not config.head_warmup_epochs and model.head is not None:
        logger.warning(
            "stage2.training.head_lr is 0 and head_warmup_epochs is 0: the head stays at its random "
            "initialisation and only the projectors train"
        )
    ranks = distributed.current()
    trainable = [p for p in model.parameters() if p.requires_grad]
    distributed.broadcast_parameters(trainable)
    torch.manual_seed(seed + ranks.rank)  # each rank its own dropout; the batch order's generator is shared
    generator = torch.Generator().manual_seed(seed)
    result = Stage2Result()
    started = time.perf_counter()  # the warm-up is part of training's cost
    # the warm-up and the first epoch share one draw of the first epoch's samples
    make_samples = functools.lru_cache(maxsize=1)(make_samples)
    best_score, best_state, spent = float("-inf"), None, 0.0
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        restore_rng(saved["rng"])
        best_score, best_state, spent = saved["best_score"], saved["best_state"], saved["seconds"]
        result = Stage2Result(**{**saved["result"], "resumed_from": (saved["epoch"], saved["step"])})
        logger.info(
            "stage 2: resuming at epoch %d after %d batches from %s",
            saved["epoch"],
            saved["step"],
            checkpoints.path,
        )
    elif config.head_warmup_epochs and model.head is not None:
        result.head_warmup = warm_up_head(
            model,
            make_samples(1)[: config.head_warmup_users],
            config.head_warmup_epochs,
            config.lr,
            seed,
            batch_size=config.batch_size,
            progress=progress,
            gate_samples=gate_samples,
            gate_bounds=config.bounds if isinstance(gate_samples, dict) else None,
            gate_point=config.gate_point,
        )

    def save(epoch: int, step: int, batches: int, epoch_generator: torch.Tensor) -> None:
        checkpoints.save(
            {
                "epoch": epoch,
                "step": step,  # batches done in the epoch
                "batches": batches,
                "epoch_generator": epoch_generator,  # before the epoch's batch order was drawn
                "generator": generator.get_state(),
                "model": model.trainable_state(),
                "optimizer": optimizer.state_dict(),
                "rng": rng_state(),
                "best_score": best_score,
                "best_state": best_state,
                "seconds": spent + time.perf_counter() - started,
                "result": {k: v for k, v in result.__dict__.items() if k != "resumed_from"},
            }
        )

    first_epoch, skip = 1, 0
    # saved as an epoch ended: the next one starts; saved inside one: its batch order is drawn again, and the
    # batches done are skipped
    if saved is not None and saved["step"] == saved["batches"]:
        first_epoch = saved["epoch"] + 1
        generator.set_state(saved["generator"])
    elif saved is not None:
        first_epoch, skip = saved["epoch"], saved["step"]
        generator.set_state(saved["epoch_generator"])
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_generator = generator.get_state()
        samples = make_samples(epoch)[: config.max_train_users]
        order = torch.randperm(len(samples), generator=generator).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        model.train()
        model.zero_grad(set_to_none=True)
        bar = progress_bar(
            batches, desc=f"stage2 epoch {epoch}", unit="batch", disable=not progress, initial=skip
        )
        for step, batch in enumerate(batches[skip:], start=skip + 1):
            tick = time.perf_counter()
            local = ranks.part(batch)  # the whole batch in one process
            weight = distributed.share(len(local), len(batch))
            loss = model.loss([samples[i] for i in local]) if local else torch.zeros(())
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"stage-2 loss is {loss.item()} at epoch {epoch}, step {step}: training diverged "
                    "(try llms.<key>.dtype float32 or a lower stage2.training.lr)"
                )
            if local:
                (loss * weight / config.grad_accumulation).backward()
            result.step_loss.append(distributed.sum_values([loss.item() * weight])[0])
            result.step_samples_per_s.append(len(batch) / (time.perf_counter() - tick))
            bar.update()
            bar.set_postfix(refresh=False, loss=f"{np.mean(result.step_loss[-20:]):.4f}")
            if step % config.grad_accumulation == 0 or step == len(batches):
                distributed.sum_gradients(trainable)
                optimizer.step()
                model.zero_grad(set_to_none=True)  # the fixed head's too: no optimizer clears it
                inside = step < len(batches) and step % (config.grad_accumulation * every_steps) == 0
                if checkpoints is not None and inside:
                    save(epoch, step, len(batches), epoch_generator)
        bar.close()
        skip = 0
        # one epoch leaves nothing to choose: its validation scoring would only cost time (NaN is logged)
        choose = valid and config.epochs > 1
        score = evaluate(candidate_scores(model, valid, config.batch_size), valid) if choose else float("nan")
        result.epoch_valid_hit_at_1.append(score)
        if best_state is None or score > best_score:
            best_score, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.trainable_state())
        result.epoch_train_loss.append(
            float(np.mean(result.step_loss[-len(batches) :])) if batches else float("nan")
        )
        if on_epoch is not None:
            on_epoch(epoch, {"train_loss": result.epoch_train_loss[-1], "valid_hit_at_1": score})
        if checkpoints is not None:
            save(epoch, len(batches), len(batches), epoch_generator)
    model.load_state_dict(best_state, strict=False)
    result.seconds = spent + time.perf_counter() - started
    if checkpoints is not None:
        checkpoints.clear()
    return result
