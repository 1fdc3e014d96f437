"""What stage 2, the evaluation and the benches build from a run's tables: the LLM, the prompt wording, the item
titles and tables, the frozen CF model's user vectors and logits, the samples of frozen rows and of training users,
and a fresh recommender."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from allmrec_pipeline.cooccurrence import CooccurrenceTable, cooccurrence_table
from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.models.data import pad_left
from allmrec_pipeline.seeding import rng_for

from .loading import LLMSpec, load_frozen_llm
from .prompt import PromptTemplate
from .recommender import Sample, SoftPromptRecommender, Stage2Config
from .training import Stage2TrainingConfig

logger = logging.getLogger(__name__)

DEFAULT_WORDING = "default"  # the stage2.wording entry of a dataset without its own
_WARNED_WORDING: set[str] = set()


def llm_spec(llms: dict[str, Any], llm: str) -> LLMSpec:
    """The spec of LLM key ``llm`` from ``llms`` (parameters_stage2.yml)."""
    if llm not in llms:
        raise ConfigError(f"params 'llm' is {llm!r}, which is not a key of 'llms' (known: {sorted(llms)})")
    try:
        return LLMSpec(**llms[llm])
    except TypeError as exc:
        raise ConfigError(f"params 'llms.{llm}': {exc}") from exc


def load_llm(llms: dict[str, Any], llm: str):
    spec = llm_spec(llms, llm)
    try:
        return spec, *load_frozen_llm(spec)
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"params 'llms.{llm}': {exc}") from exc


def cold_count_threshold(counts: np.ndarray, share: float) -> int:
    """The count gate's threshold for a cold share: the largest ``k`` such that at most ``share`` of the items
    have ``k`` or fewer training interactions (``counts``: ``(n_items + 1,)``, index 0 the padding; 0 when no
    count qualifies)."""
    if not 0 < share < 1:
        raise ValueError(f"a cold share must lie in (0, 1), not {share!r}")
    values, items = np.unique(np.asarray(counts)[1:], return_counts=True)
    if not len(values):
        raise ValueError("no items to derive the count gate's threshold from")
    within = values[np.cumsum(items) / items.sum() <= share]  # the share at or below each distinct count
    return int(within.max()) if len(within) else 0


def with_cold_threshold(
    stage2: dict[str, Any], counts: np.ndarray
) -> tuple[dict[str, Any], dict[str, float]]:
    """``stage2`` with ``model.gate_max_count`` derived from ``model.gate_cold_share`` and the training counts
    (``cold_count_threshold``) when both the share and the count gate are set, else unchanged; and what was
    derived: the threshold and the share of items at or below it (``{}`` when unchanged)."""
    model = stage2["model"]
    share = model.get("gate_cold_share")
    if share is None or model.get("gate_max_count") is None or not model.get("cf_skip"):
        return stage2, {}
    try:
        threshold = cold_count_threshold(counts, float(share))
    except ValueError as exc:
        raise ConfigError(f"params 'stage2.model.gate_cold_share': {exc}") from exc
    cold = float((np.asarray(counts)[1:] <= threshold).mean())
    logger.info(
        "Count gate: candidates with at most %d training interactions are cold (%.1f%% of the items; "
        "stage2.model.gate_cold_share %.2f)",
        threshold,
        100 * cold,
        share,
    )
    resolved = {**stage2, "model": {**model, "gate_max_count": threshold}}
    return resolved, {"gate_max_count": float(threshold), "gate_cold_item_share": cold}


def wording_for(stage2: dict[str, Any], dataset: str) -> dict[str, str]:
    """The dataset's item noun and verbs: ``stage2.wording.<dataset>``, else ``stage2.wording.default`` (with a
    warning naming the key to add); a dataset with neither fails instead of getting a prompt without them."""
    wording = stage2["wording"]
    if dataset in wording:
        return dict(wording[dataset])
    if DEFAULT_WORDING in wording:
        if dataset not in _WARNED_WORDING:  # once a process: every node of a run asks
            _WARNED_WORDING.add(dataset)
            logger.warning(
                "no prompt wording for dataset %r: the prompt uses stage2.wording.%s (%s); add stage2.wording.%s to "
                "word it for this data",
                dataset,
                DEFAULT_WORDING,
                ", ".join(f"{k}={v}" for k, v in wording[DEFAULT_WORDING].items()),
                dataset,
            )
        return dict(wording[DEFAULT_WORDING])
    raise ConfigError(
        f"no prompt wording for dataset {dataset!r}: add stage2.wording.{dataset} (or stage2.wording."
        f"{DEFAULT_WORDING}) with noun, verb and verb_present (known: {sorted(wording)})"
    )


def item_titles(items: pd.DataFrame, item_index: pd.DataFrame) -> list[str]:
    """Titles by item index (index 0, padding, is ``""``)."""
    merged = item_index.merge(items[["item_id", "title"]], on="item_id", how="left").sort_values("item_idx")
    return [""] + merged["title"].fillna("").astype(str).tolist()


def encode_item_titles(
    items: pd.DataFrame, item_index: pd.DataFrame, title_encoder: str, label: str = "source"
) -> pd.DataFrame:
    """Every item title through the frozen sentence encoder ``title_encoder`` (``embedded`` or a local
    SentenceTransformer directory): an ``(item_idx, vector)`` table of unit-length vectors, the title vectors the
    ``text_cosine`` floor and the count gate's z(text_cosine) read (``embedding_table`` makes them a table)."""
    from allmrec_pipeline.models.text_encoder import load_sentence_transformer

    try:
        encoder = load_sentence_transformer(title_encoder)
    except FileNotFoundError as exc:
        raise ConfigError(f"params 'title_encoder': {exc}") from exc
    titles = item_titles(items, item_index)[1:]
    logger.info("Encoding %d %s item titles with the sentence encoder %r", len(titles), label, title_encoder)
    vectors = encoder.encode(
        titles, batch_size=128, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype(np.float32)
    return pd.DataFrame({"item_idx": np.arange(1, len(titles) + 1), "vector": list(vectors)})


def title_vector_table(frame: pd.DataFrame | None, n_items: int) -> torch.Tensor | None:
    """``(N+1, d)`` title vectors by item index (row 0 zero) from ``encode_item_titles``'s table, or ``None``
    when none were encoded (an empty table); a table of another item index fails."""
    if frame is None or frame.empty:
        return None
    if len(frame) != n_items:
        raise ConfigError(
            f"the title vectors cover {len(frame)} items, the item index has {n_items}: rerun encode_item_titles"
        )
    return embedding_table(frame, "vector")


def embedding_table(frame: pd.DataFrame, column: str) -> torch.Tensor:
    """``(N+1, d)`` from an ``(item_idx, vector)`` table, row 0 (padding) zero."""
    values = np.stack(frame.sort_values("item_idx")[column].to_numpy()).astype(np.float32)
    return torch.cat([torch.zeros(1, values.shape[1]), torch.from_numpy(values)])


def item_table(source: str, joint_item_embeddings: pd.DataFrame, backbone) -> torch.Tensor:
    """``(N+1, d_item)`` with row 0 zero: stage-1 ``e_i`` (``joint``) or the raw CF embeddings (``cf``, MLP-LLM)."""
    if source == "cf":
        return backbone.item_embeddings.detach().float()
    if source != "joint":
        raise ConfigError(f"params 'stage2.item_source' must be 'joint' or 'cf', got {source!r}")
    return embedding_table(joint_item_embeddings, "e")


@torch.no_grad()
def user_vectors(backbone, histories: list, item_table: torch.Tensor | None = None) -> torch.Tensor:
    """The frozen backbone's ``x_u`` ``(B, d)`` for each history (``item_table``: stand-ins for foreign items)."""
    backbone.eval()
    padded = torch.from_numpy(pad_left(histories, backbone.config.max_seq_len))
    return torch.cat(
        [backbone.user_representation(padded[i : i + 512], item_table) for i in range(0, len(padded), 512)]
    )


def row_samples(
    rows: pd.DataFrame,
    users: torch.Tensor,
    cf_scores: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> list[Sample]:
    """Samples of frozen evaluation rows (candidates as stored, target located) with their user vectors and,
    when given, the CF model's logits of their candidates ``(R, C)`` (what ``cf_skip`` adds to) and the
    training interaction count of every item ``(N+1,)`` (what the count gate reads)."""

    def per_row(values):
        return [None] * len(rows) if values is None else [torch.as_tensor(v) for v in values]

    candidates = [np.asarray(c, dtype=np.int64) for c in rows["candidates"]]
    logits = per_row(None if cf_scores is None else np.asarray(cf_scores, dtype=np.float32))
    row_counts = per_row(None if counts is None else [counts[c] for c in candidates])
    return [
        Sample(
            vector,
            list(map(int, history)),
            cands.tolist(),
            int(np.flatnonzero(cands == target)[0]),
            cf,
            count,
        )
        for vector, history, cands, target, cf, count in zip(
            users, rows["history"], candidates, rows["target_item_idx"], logits, row_counts, strict=True
        )
    ]


@torch.no_grad()
def cf_logits(
    backbone, users: torch.Tensor, candidates: list, item_table: torch.Tensor | None = None
) -> np.ndarray:
    """The frozen backbone's scores ``(R, C)`` of each row's candidates (``item_table``: stand-ins for foreign
    items)."""
    table = backbone.item_embeddings if item_table is None else item_table
    index = torch.as_tensor(np.asarray([list(c) for c in candidates], dtype=np.int64))
    return backbone.score_vectors(users, table[index]).float().numpy()


def build_recommender(
    model,
    tokenizer,
    stage2: dict[str, Any],
    wording: dict[str, str],
    table: torch.Tensor,
    titles: list[str],
    cf_dim: int,
    model_overrides: dict[str, Any] | None = None,
    title_vectors: torch.Tensor | None = None,
    cooccurrence: CooccurrenceTable | None = None,
) -> SoftPromptRecommender:
    """Fresh projectors around the (shared, frozen) LLM, configured by ``stage2.model`` plus overrides
    (``title_vectors``: the items' title vectors, ``title_vector_table``, which a gate weighing z(text_cosine)
    needs; ``cooccurrence``: the training sequences' co-occurrence table, which a gate weighing it needs)."""
    settings = {**stage2["model"], **(model_overrides or {})}
    settings.pop("gate_cold_share", None)  # resolved into gate_max_count by with_cold_threshold
    if settings.get("soft_token_norm") == "match":
        settings["soft_token_norm"] = float(model.get_input_embeddings().weight.float().norm(dim=1).mean())
    try:
        config = Stage2Config(**settings)
        template = PromptTemplate(**stage2["template"])
    except TypeError as exc:
        raise ConfigError(f"params 'stage2.model' / 'stage2.template': {exc}") from exc
    try:
        return SoftPromptRecommender(
            model, tokenizer, template, wording, table, titles, cf_dim, config, title_vectors,
            cooccurrence=cooccurrence,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"params 'stage2.model': {exc}") from exc


def training_cooccurrence(
    model_settings: dict[str, Any], train_sequences: pd.DataFrame, n_items: int
) -> CooccurrenceTable | None:
    """The training sequences' co-occurrence table a gate weighing it reads (``stage2.model.gate_cooccurrence``,
    with its ``cooccurrence_window`` and ``cooccurrence_backward``), or ``None`` without it."""
    if not model_settings.get("gate_cooccurrence"):
        return None
    try:
        return cooccurrence_table(
            list(train_sequences["items"]),
            n_items,
            model_settings["cooccurrence_window"],
            model_settings["cooccurrence_backward"],
        )
    except ValueError as exc:
        raise ConfigError(f"params 'stage2.model' (co-occurrence) on train_sequences: {exc}") from exc


# the paper's LLM-only baseline: the frozen LLM reading titles alone, no checkpoint (``build_recommender``'s overrides)
LLM_ONLY = {
    "use_user": False,
    "item_tokens": "none",
    "objective": "lm",
    "cf_skip": False,
    "gate_text_overlap": False,
    "gate_text_cosine": False,
    "gate_cooccurrence": False,
}
TARGETS = ("held_out", "last_training_item")


def training_samples(
    train_sequences,
    sequences,
    backbone,
    n_items,
    config: Stage2TrainingConfig,
    seed: int,
    exclude=(),
    counts: np.ndarray | None = None,
):
    """The sampler of each epoch's training samples (seeded negatives, re-drawn per epoch) and the user count.

    ``held_out`` targets: each user's history is the whole training sequence and the target the next item of the
    full sequence (the validation item, never trained on by the CF model); users in ``exclude`` (those of the
    frozen validation rows) and users without a next item are left out. ``last_training_item``: the training
    sequence's last item after the rest. The users come in a seeded random order, as many as joint training or
    the head's warm-up takes (``max_train_users``, ``head_warmup_users``). ``counts`` ``(N+1,)``: every item's
    training interactions, attached to each sample's candidates (the count gate reads them).
    """
    if config.targets not in TARGETS:
        raise ConfigError(f"params 'stage2.training.targets': {config.targets!r} is not one of {TARGETS}")
    full = sequences.set_index("user_idx")["items"]
    users = train_sequences[~train_sequences["user_idx"].isin(set(exclude))]
    if config.targets == "held_out":
        longer = users["user_idx"].map(full.map(len)).to_numpy() > users["items"].map(len).to_numpy()
        users = users[longer]
    else:
        users = users[users["items"].map(len) >= 2]
    users = users.reset_index(drop=True)
    if users.empty:
        raise ConfigError(f"stage 2 has no training sample with targets {config.targets!r}")
    # joint training and the warm-up draw from one list, in a seeded order: any first n are a random subset
    caps = [config.max_train_users]
    if config.head_warmup_epochs:
        caps.append(config.head_warmup_users or config.max_train_users)
    wanted = None if None in caps else max(caps)
    order = rng_for(seed, "stage2/train_users").permutation(len(users))
    users = users.iloc[order[:wanted]].reset_index(drop=True)
    if config.targets == "held_out":
        histories = [np.asarray(items) for items in users["items"]]
        targets = [
            int(full[u][len(items)]) for u, items in zip(users["user_idx"], users["items"], strict=True)
        ]
    else:
        histories = [np.asarray(items[:-1]) for items in users["items"]]
        targets = [int(items[-1]) for items in users["items"]]
    vectors = user_vectors(backbone, histories)
    touched = (
        sequences.set_index("user_idx")["items"]
        .reindex(users["user_idx"])
        .map(lambda s: set(map(int, s)))
        .tolist()
    )

    def make_samples(epoch: int) -> list[Sample]:
        rng = rng_for(seed, f"stage2/negatives/{epoch}")
        samples = []
        for vector, history, target, seen in zip(vectors, histories, targets, touched, strict=True):
            negatives: list[int] = []
            while len(negatives) < config.n_negatives:
                for item in rng.integers(1, n_items + 1, 2 * config.n_negatives).tolist():
                    if item not in seen and item not in negatives and len(negatives) < config.n_negatives:
                        negatives.append(item)
            candidates = [target, *negatives]
            order = rng.permutation(len(candidates))
            candidates = [candidates[i] for i in order]
            samples.append(Sample(vector, history.tolist(), candidates, int(np.flatnonzero(order == 0)[0])))
        logits = cf_logits(
            backbone, torch.stack([s.user_vector for s in samples]), [s.candidates for s in samples]
        )
        for sample, row in zip(samples, logits, strict=True):
            sample.cf_scores = torch.from_numpy(row)
            if counts is not None:
                sample.counts = torch.from_numpy(counts[np.asarray(sample.candidates)])
        return samples

    return make_samples, len(users)
