"""Rows drawn for the users outside every frozen row, shared by the probes of docs/experiments.md, 2026-12-06,
"three more mechanisms and the test position" (``many_choice_rows.py``, ``fitted_fusion.py``,
``test_position_choice.py``, ``test_position_model.py``). A row at ``offset`` 0 is a validation-position row
(history: the training sequence; target: the next item), at 1 a test-position row (history: the sequence up to its
last item; target: the last item); 19 negatives drawn as split_sequences draws them."""
from dataclasses import dataclass
import sys
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import run_catalog, title_vector_frame  # noqa: E402
from allmrec_pipeline import metrics
from allmrec_pipeline.llm.gate_bounds import GateBounds
from allmrec_pipeline.llm.inputs import cf_logits, item_titles, title_vector_table, user_vectors
from allmrec_pipeline.llm.text_gate import TextGate
from allmrec_pipeline.models.checkpoint import load_backbone
from allmrec_pipeline.models.data import popularity_counts
from allmrec_pipeline.pipelines.split_sequences.candidates import sample_candidates, seen_items
from allmrec_pipeline.seeding import rng_for


@dataclass
class Run:
    """The run's catalog and what the probes read from it; ``users``: the users outside every frozen row with at
    least ``min_extra`` items after their training sequence, in a seeded order, at most ``max_users``."""
    catalog: object
    seed: int
    bounds: GateBounds
    n_items: int
    counts: np.ndarray
    popularity: pd.DataFrame
    seen: dict
    full: pd.Series
    users: pd.DataFrame
    max_len: int
    backbone: object
    titles: list
    title_vectors: torch.Tensor
    text_gate: TextGate


def load_run(env, max_users: int, min_extra: int, text_gate: bool = True) -> Run:
    """``text_gate``: read the run's stage-2 checkpoint for its LLM-free gate (else ``Run.text_gate`` is None and
    the run needs no stage 2)."""
    catalog, _ = run_catalog("", env=env)
    load = catalog.load
    seed = int(load("params:seed"))
    item_index, popularity = load("item_index"), load("item_popularity")
    n = len(item_index)
    sequences, train, frozen = load("sequences"), load("train_sequences"), load("eval_candidates")
    full = sequences.set_index("user_idx")["items"]
    users = train[~train["user_idx"].isin(set(frozen["user_idx"]))]
    users = users[users["user_idx"].map(full.map(len)).to_numpy() >= users["items"].map(len).to_numpy() + min_extra]
    users = users.sample(frac=1.0, random_state=seed).head(max_users).reset_index(drop=True)
    titles = item_titles(load("items"), item_index)
    vectors = title_vector_table(title_vector_frame(catalog), n)
    return Run(
        catalog, seed, GateBounds(**load("params:stage2")["training"]["gate_bounds"]), n,
        popularity_counts(popularity, n), popularity, seen_items(sequences), full, users,
        int(load("params:split")["max_seq_len"]), load_backbone(load("cf_model"), expected_n_items=n), titles,
        vectors, TextGate.from_checkpoint(load("stage2_model"), titles, vectors.numpy()) if text_gate else None,
    )


def rows_at(run: Run, offset: int, purpose: str):
    """Every user's row at ``offset``: histories, targets ``(R,)``, candidates ``(R, 20)`` (negatives drawn with
    ``rng_for(seed, purpose)``) and the targets' popularity groups ``(R,)``."""
    users = run.users
    hist = [np.asarray(run.full[u][: len(h) + offset])[-run.max_len:] for u, h in zip(users["user_idx"], users["items"])]
    tgt = np.array([run.full[u][len(h) + offset] for u, h in zip(users["user_idx"], users["items"])], dtype=np.int64)
    cands = sample_candidates(users["user_idx"].to_numpy(), tgt, run.seen, run.n_items, 20, rng_for(run.seed, purpose))
    group = pd.Series(tgt).map(run.popularity.set_index("item_idx")["group"]).astype(str).to_numpy()
    return hist, tgt, np.stack(cands).astype(np.int64), group


def llm_free(run: Run, hist, C: np.ndarray, tgt: np.ndarray):
    """The count gate's LLM-free inputs ``(R, 20, 3)`` (z(CF), z(text_overlap), z(text matcher)), the cold flags
    ``(R, 20)`` and the targets' columns ``(R,)``."""
    with torch.no_grad():
        cf = cf_logits(run.backbone, user_vectors(run.backbone, hist), list(C))
    X = run.text_gate.inputs(hist, C, cf).float()
    T = np.array([int(np.flatnonzero(c == t)[0]) for c, t in zip(C, tgt)])
    return X, run.text_gate.cold(run.counts[C]), T


def parser(cache: bool = True):
    """The probes' common arguments: the ``bench/gate_frontier.py`` cache (``cache``), ``--env``, ``--max-users``."""
    import argparse

    ap = argparse.ArgumentParser()
    if cache:
        ap.add_argument("cache")
    ap.add_argument("--env", default=None)
    ap.add_argument("--max-users", type=int, default=20000)
    return ap


def validation_rows(env, max_users: int):
    """The validation-position rows ``many_choice_rows.py`` and ``fitted_fusion.py`` draw: the run, the targets'
    groups and ``llm_free``'s inputs, cold flags and target columns."""
    run = load_run(env, max_users, 1)
    hist, targets, C, group = rows_at(run, 0, "probe/many_choice_rows")
    X, cold, T = llm_free(run, hist, C, targets)
    return run, group, X, cold, T


def hits(scores, targets) -> np.ndarray:
    """Each row's Hit@1 (a tie at the top splits the hit), as the evaluation counts it."""
    return metrics.scores_per_row(np.asarray(scores), np.asarray(targets), ("hit_at_1",))["hit_at_1"]


def interval(differences: np.ndarray, seed: int) -> str:
    """The mean of per-row paired differences with its 95% paired bootstrap interval, as ``+d [+lo, +hi]``."""
    r = metrics.paired_bootstrap(differences, np.zeros_like(differences), seed=seed)
    return f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
