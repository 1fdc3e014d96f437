"""A-LLMRec stage 2 (Kim et al., KDD 2024, §4.2): a frozen causal LM reads CF knowledge through soft tokens.

``F_U`` projects the backbone's user representation ``x_u``, ``F_I`` the stage-1 joint item embeddings ``e_i``
(or, for the MLP-LLM baseline, the raw CF item embeddings) into the LLM's token-embedding space. Only the
projectors (and the ``embedding_head`` scorer) train; the LLM stays frozen. The TALLRec baseline (``lora_rank``
set) trains LoRA adapters in a private copy of the LLM instead (``llm.lora``), on prompts without soft tokens.

Objectives:
- ``lm``: the paper's; LM cross-entropy on the target title tokens plus EOS, the prompt masked.
- ``listwise``: cross-entropy over the candidates' title log-likelihoods, the scores rank mode uses.
- ``embedding_head``: in the spirit of LLM-SRec, a small head compares the last prompt position's hidden state
  with the hidden states at the candidates' soft tokens; one forward pass per sample, no continuations.
With ``cf_skip`` the ``embedding_head`` score is the frozen CF model's logits, z-scored per row, plus the head's
correction, which starts at exactly zero (its query map is zero-initialised): training can only add what the CF
model lacks, and a zeroed correction ranks exactly as the CF model.
With ``cf_skip`` and ``gate_max_count`` (the count gate) the head is trained alone, as a reader of the titles, and
the score weighs the z-scored CF logits and the z-scored head scores per candidate: candidates with at most
``gate_max_count`` training interactions (cold: the CF model has barely seen them) take the cold pair of weights,
the rest the other pair (``gate``, chosen on the warm-up's samples, each scored out of fold, by
``llm.training.choose_gate``). With ``gate_text_overlap`` the gate weighs a third score, the ``text_overlap``
floor's (the candidate title's word overlap with the history titles, z-scored), with a weight per group too;
with ``gate_text_cosine`` another, the ``text_cosine`` floor's (a frozen sentence encoder's title vectors: the
candidate's cosine with the mean of the history titles', z-scored); with ``gate_cosine_rank`` that score is
the text matcher's instead (``llm.text_matcher``: the same vectors, adapted to what users buy next, trained
before the gate is chosen and saved with the projectors); with ``gate_cooccurrence`` one more, a second
collaborative score: the candidate's co-occurrence with the recent history in the training sequences
(``allmrec_pipeline.cooccurrence``; its table saved with the projectors, and 0 for another domain's items).
NOTE: ``listwise``, ``embedding_head`` and ``cf_skip`` are not in the paper; they exist because the LM objective does not
learn to *choose* within a CPU budget (see docs/experiments.md, the stage-2 learning curve).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from allmrec_pipeline.cooccurrence import CooccurrenceTable, cooccurrence_scores
from allmrec_pipeline.models.checkpoint import CheckpointMismatchError, load_state_checked, require_kind
from allmrec_pipeline.models.projectors import CandidateHead, Padded, Projector, TokenMatchHead
from allmrec_pipeline.text_floors import cosine_scores, overlap_scores, title_words, zscore_rows

from .layers import checked_layer_count, first_layers
from .lora import with_lora
from .prompt import CANDIDATE, HISTORY, USER, PromptBatch, PromptTemplate, embed_prompts, tokenize_prompt
from .scoring import score_continuations
from .text_matcher import TextMatcher, match_scores

OBJECTIVES = ("lm", "listwise", "embedding_head")
ITEM_TOKENS = ("joint", "none", "random")
TITLE_FORMATS = ("quoted", "plain")
HEAD_READS = ("soft_tokens", "titles", "title_tokens")
# a checkpoint's config lacks the keys added after it was saved: it was trained with these values (the
# dataclass defaults of that time)
LEGACY_STAGE2 = {
    "objective": "embedding_head",
    "n_history": 10,
    "max_title_tokens": 24,
    "use_user": True,
    "item_tokens": "joint",
    "soft_token_norm": None,
    "length_normalize": True,
    "title_format": "plain",
    "head_dim": 128,
    "head_tied": False,
    "head_init": "random",
    "head_layer": None,
    "cf_skip": False,
    "head_reads": "soft_tokens",
    "gate_max_count": None,
    "gate_text_overlap": False,
    "gate_text_cosine": False,
    "gate_cosine_rank": None,
    "gate_cooccurrence": False,
    "lora_rank": None,
}


def zscore(scores: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean, over its (population) standard deviation; a constant row becomes zeros
    (``text_floors.zscore_rows`` in torch)."""
    centred = scores - scores.mean(dim=-1, keepdim=True)
    spread = scores.std(dim=-1, keepdim=True, correction=0)
    return torch.where(spread > 0, centred / spread.clamp_min(1e-12), torch.zeros_like(centred))


@dataclass
class Stage2Config:
    """One stage-2 model; no field has a default: the values come from ``stage2.model`` (conf/base, with a
    variant's overrides), or from a checkpoint's metadata (``LEGACY_STAGE2`` fills keys that older checkpoints
    lack)."""

    objective: str  # (str) lm | listwise | embedding_head
    n_history: int  # (int >= 1) most recent history items in the prompt
    max_title_tokens: int  # (int >= 1) titles are truncated to this many LLM tokens
    use_user: bool  # (bool) ablation: the [UserRep] soft token
    item_tokens: (
        str  # (str) joint: soft tokens from the item table | none: titles only | random: a random table
    )
    soft_token_norm: float | None  # (float|null) rescale soft tokens to this L2 norm; null: unscaled
    length_normalize: bool  # (bool) rank mode: mean instead of sum of the title's token log-probabilities
    title_format: (
        str  # (str) the answer scored in rank mode and trained by lm: plain: ' Title' | quoted: ' "Title"'
    )
    head_dim: int  # (int >= 1) embedding_head: query/key size
    head_layer: (
        int | None
    )  # (int >= 1|null) embedding_head: read the hidden states after this many layers; null: all
    cf_skip: bool  # (bool) embedding_head: score = z(CF logits) + the head's correction (starts at 0)
    head_reads: (
        str  # (str) embedding_head: soft_tokens: the last position against each [CandidateEmb] | titles:
    )
    # the mean over the history titles' tokens against the mean over each candidate title's tokens (in context)
    gate_max_count: int | None  # (int >= 0|null) with cf_skip: the count gate's threshold; null: no gate
    gate_text_overlap: bool = False  # (bool) the count gate also weighs z(text_overlap) of the candidates
    gate_text_cosine: bool = False  # (bool) the count gate also weighs z(text_cosine): needs title_vectors
    gate_cosine_rank: int | None = None  # (int >= 1|null) with gate_text_cosine: the text matcher's rank
    gate_cooccurrence: bool = (
        False  # (bool) the count gate also weighs z(log1p(co-occurrence)) (a table needed)
    )
    cooccurrence_window: int = 3  # (int >= 1) pairs counted up to this many positions apart
    cooccurrence_backward: float = 0.5  # (float >= 0) what a pair read backwards counts
    cooccurrence_decay: float = (
        0.7  # (float in (0, 1]) each older history item's weight, relative to the next
    )
    head_init: str = "random"  # (str) title_tokens: random | identity (the match starts as cosine similarity)
    head_tied: bool = False  # (bool) a bench knob (not in conf/base): the head's keys share the query's map
    lora_rank: int | None = None  # (int >= 1|null) LoRA adapters of this rank in a copy of the LLM (TALLRec)
    lora_alpha: float = 16.0  # (float > 0) the adapters' scale is lora_alpha / lora_rank
    lora_dropout: float = 0.0  # (float in [0, 1)) dropout on the adapters' input in training
    lora_target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # (list[str]) the LLM's linear layers adapted

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sample:
    """One prompt: the user vector ``(d_cf,)``, history and candidate item indexes, the target's column."""

    user_vector: torch.Tensor
    history: list[int]
    candidates: list[int]
    target_pos: int | None = None
    cf_scores: torch.Tensor | None = None  # (C,) the frozen CF model's logits of the candidates (cf_skip)
    counts: torch.Tensor | None = None  # (C,) the candidates' training interaction counts (gate_max_count)


def _check_gate_config(
    config: Stage2Config,
    titles: list[str],
    title_vectors: torch.Tensor | None,
    text_dim: int | None,
    cooccurrence: CooccurrenceTable | None,
    foreign_items: bool,
) -> None:
    """Raise ``ValueError`` naming the setting where the count gate's settings or inputs do not fit together."""
    gate = config.gate_max_count
    if gate is not None and (isinstance(gate, bool) or not isinstance(gate, int) or gate < 0):
        raise ValueError(f"gate_max_count must be null or an integer >= 0, not {gate!r}")
    if config.gate_text_overlap and not (config.cf_skip and config.gate_max_count is not None):
        raise ValueError("gate_text_overlap needs the count gate: cf_skip true and gate_max_count set")
    if config.gate_text_cosine and not (config.cf_skip and config.gate_max_count is not None):
        raise ValueError("gate_text_cosine needs the count gate: cf_skip true and gate_max_count set")
    if config.gate_text_cosine and title_vectors is not None and len(title_vectors) != len(titles):
        raise ValueError(
            f"the title vectors cover {len(title_vectors) - 1} items, the titles {len(titles) - 1}: "
            "they belong to another item index (rerun encode_item_titles)"
        )
    if config.gate_cooccurrence and not (config.cf_skip and config.gate_max_count is not None):
        raise ValueError("gate_cooccurrence needs the count gate: cf_skip true and gate_max_count set")
    if config.gate_cooccurrence and cooccurrence is None:
        raise ValueError(
            "gate_cooccurrence needs the training sequences' co-occurrence table "
            "(allmrec_pipeline.cooccurrence.cooccurrence_table, or the stage-2 checkpoint's)"
        )
    if config.gate_cooccurrence and not foreign_items and cooccurrence.n_keys != len(titles):
        raise ValueError(
            f"the co-occurrence table covers {cooccurrence.n_keys - 1} items, the titles {len(titles) - 1}: "
            "it belongs to another item index"
        )
    rank = config.gate_cosine_rank
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"gate_cosine_rank must be null or an integer >= 1, not {rank!r}")
    if config.gate_text_cosine and rank is not None and title_vectors is None and text_dim is None:
        raise ValueError(
            "gate_cosine_rank needs the items' title vectors (item_title_vectors, from stage 2's "
            "encode_item_titles node) to size the text matcher"
        )


class SoftPromptRecommender(nn.Module):
    """Projectors (+ head) around a frozen LLM; ``trainable_state()`` is all that is ever saved."""

    def __init__(
        self,
        llm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        template: PromptTemplate,
        wording: dict[str, str],
        item_table: torch.Tensor,
        titles: list[str],
        cf_dim: int,
        config: Stage2Config,
        title_vectors: torch.Tensor | None = None,
        text_dim: int | None = None,
        cooccurrence: CooccurrenceTable | None = None,
        foreign_items: bool = False,
    ) -> None:
        """``title_vectors`` ``(N+1, d)``: what a gate weighing z(text_cosine) reads; ``text_dim``: their width
        when they are not given (a checkpoint's text matcher is rebuilt for its own width); ``cooccurrence``: the
        training sequences' co-occurrence table, which a gate weighing it needs; ``foreign_items``: ``titles``
        are another domain's items, which the table does not index (their co-occurrence score is 0)."""
        super().__init__()
        if config.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {config.objective!r}: use one of {OBJECTIVES}")
        if config.item_tokens not in ITEM_TOKENS:
            raise ValueError(f"unknown item_tokens {config.item_tokens!r}: use one of {ITEM_TOKENS}")
        if config.title_format not in TITLE_FORMATS:
            raise ValueError(f"unknown title_format {config.title_format!r}: use one of {TITLE_FORMATS}")
        if config.head_reads not in HEAD_READS:
            raise ValueError(f"unknown head_reads {config.head_reads!r}: use one of {HEAD_READS}")
        if config.cf_skip and config.objective != "embedding_head":
            raise ValueError(
                "cf_skip needs the embedding_head objective (the CF logits are added to its scores): set cf_skip to false"
            )
        _check_gate_config(config, titles, title_vectors, text_dim, cooccurrence, foreign_items)
        if config.head_layer is not None and config.objective == "embedding_head":  # fails here, not mid-run
            checked_layer_count(llm, config.head_layer)
        # TALLRec: LoRA adapters in a copy of the LLM; only they are trained and saved
        if config.lora_rank is not None:
            llm, self.lora = with_lora(
                llm,
                config.lora_rank,
                config.lora_alpha,
                config.lora_dropout,
                list(config.lora_target_modules),
            )
        object.__setattr__(self, "llm", llm)  # not a submodule: never saved, never trained
        self.tokenizer, self.template, self.wording, self.config = tokenizer, template, wording, config
        hidden = llm.get_input_embeddings().embedding_dim
        # with LoRA, a projector the prompt has no soft token for is not built (the checkpoint is the adapters)
        lean = config.lora_rank is not None
        self.user_proj = (
            Projector(cf_dim, hidden, config.soft_token_norm) if config.use_user or not lean else None
        )
        self.item_proj = (
            Projector(item_table.shape[1], hidden, config.soft_token_norm)
            if config.item_tokens != "none" or not lean
            else None
        )
        if config.head_init != "random" and config.head_reads != "title_tokens":
            raise ValueError(f"head_init {config.head_init!r} needs head_reads title_tokens")
        self.head = None
        if config.objective == "embedding_head" and config.head_reads == "title_tokens":
            self.head = TokenMatchHead(hidden, config.head_dim, tied=config.head_tied, init=config.head_init)
        elif config.objective == "embedding_head":
            self.head = CandidateHead(hidden, config.head_dim, tied=config.head_tied)
        # the plain cf_skip: a zero query, so the correction starts at exactly 0 and the model starts as the CF one
        if self.head_corrects_cf:
            nn.init.zeros_(self.head.query.weight)
            nn.init.zeros_(self.head.query.bias)
        # the count gate's weights; rows: other candidates, cold ones; columns: the weight of z(CF), of z(head)
        # (and of z(text_overlap)). Saved with the projectors; all ones until choose_gate sets them
        if self.gated:
            width = (
                2
                + int(config.gate_text_overlap)
                + int(config.gate_text_cosine)
                + int(config.gate_cooccurrence)
            )
            self.register_buffer("gate", torch.ones(2, width))
        # gate_cooccurrence: the table as buffers (saved with the projectors) and as the arrays lookups read;
        # None for another domain's items
        self.cooccurrence = None
        if config.gate_cooccurrence:
            self.register_buffer("cooccurrence_keys", torch.from_numpy(np.asarray(cooccurrence.keys)))
            self.register_buffer("cooccurrence_weights", torch.from_numpy(np.asarray(cooccurrence.weights)))
            self.register_buffer("cooccurrence_n_keys", torch.tensor([cooccurrence.n_keys]))
            self.cooccurrence = None if foreign_items else cooccurrence
        # gate_text_overlap: each item's title words, as the text_overlap floor reads them
        self.title_words = [title_words(t) for t in titles]  # the overlap's, and the gate's reference
        # gate_text_cosine: the items' unit-length title vectors (N+1, d), as the text_cosine floor reads them;
        # an input like the titles, never saved
        self.title_vectors = (
            title_vectors.detach().double().cpu().numpy()
            if config.gate_text_cosine and title_vectors is not None
            else None
        )
        # gate_cosine_rank: the text matcher that scores z(text_cosine) instead of the plain cosine; trained
        # before the gate is chosen (llm.text_matcher.train_text_matcher), saved with the projectors
        self.matcher = None
        if config.gate_text_cosine and config.gate_cosine_rank is not None:
            width = text_dim if title_vectors is None else int(title_vectors.shape[1])
            self.matcher = TextMatcher(width, config.gate_cosine_rank).requires_grad_(False)
        self._matcher_vectors: torch.Tensor | None = None  # the title vectors as the matcher reads them
        if config.item_tokens == "random":  # ablation: same shape and spread, no information; seeded, so the
            # table rebuilt at evaluation is the one trained with
            noise = torch.randn(item_table.shape, generator=torch.Generator().manual_seed(0))
            item_table = torch.cat([torch.zeros(1, item_table.shape[1]), noise[1:] * item_table[1:].std()])
        self.register_buffer("item_table", item_table.float(), persistent=False)
        self.title_ids = [
            tokenizer(t, add_special_tokens=False)["input_ids"][: config.max_title_tokens] for t in titles
        ]
        self._pieces: dict[str, list[int]] = {}  # tokenize_prompt's cache: text piece -> token ids
        self.titles = [tokenizer.decode(ids).strip() for ids in self.title_ids]
        # head_reads titles: an item's title tokens in the prompt are the last this many before its soft token (the
        # item as the template writes it, e.g. '"Title"', tokenized alone), by placeholder kind and item index
        self.title_spans: dict[str, list[int]] = {}
        if config.head_reads in ("titles", "title_tokens"):
            for kind, text in (("history", template.history_item), ("candidate", template.candidate_item)):
                written = [
                    text.replace(HISTORY, "").replace(CANDIDATE, "").format(title=t) for t in self.titles
                ]
                ids = tokenizer(written, add_special_tokens=False)["input_ids"]
                self.title_spans[kind] = [len(i) for i in ids]
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.answer_ids = [
            tokenizer(" " + self.answer_text(t), add_special_tokens=False)["input_ids"] + eos
            for t in self.titles
        ]
        self.to(llm.get_input_embeddings().weight.device)  # the projectors live where the LLM does

    @property
    def device(self) -> torch.device:
        return self.item_table.device

    @property
    def gated(self) -> bool:
        """The count gate: the CF logits and the head's scores weighed per candidate."""
        return self.config.cf_skip and self.config.gate_max_count is not None

    @property
    def head_corrects_cf(self) -> bool:
        """The plain ``cf_skip``: the head is trained as a correction added to z(CF)."""
        return self.config.cf_skip and self.config.gate_max_count is None

    def answer_text(self, title: str) -> str:
        """A title as the answer writes it (before the leading space): ``quoted`` writes it the way the prompt
        writes a candidate (the candidate template without its soft token), so that byte-level BPE splits its
        first word into the same tokens as in the prompt; ``plain`` writes the bare title."""
        if self.config.title_format == "plain":
            return title
        return self.template.candidate_item.replace(CANDIDATE, "").format(title=title)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("item_table")}

    def render(self, sample: Sample, text: str | None = None) -> str:
        """The prompt text of one sample, with its placeholders; ``text`` replaces the template's prompt (the
        item formats stay the model's: e.g. the preference question of ``llm.preferences``)."""
        soft_items = self.config.item_tokens != "none"
        template = PromptTemplate(
            self.template.text if text is None else text,
            self.template.history_item if soft_items else self.template.history_item.replace(HISTORY, ""),
            self.template.candidate_item
            if soft_items
            else self.template.candidate_item.replace(CANDIDATE, ""),
            self.template.separator,
        )
        user = f"{USER} is a user representation. " if self.config.use_user else ""
        history = sample.history[-self.config.n_history :]
        return template.render(
            {**self.wording, "user": user},
            [self.titles[i] for i in history],
            [self.titles[i] for i in sample.candidates],
        )

    def prompts(
        self, samples: list[Sample], with_answer: bool = False, text: str | None = None
    ) -> PromptBatch:
        """Embedded prompts (optionally followed by each target's title + EOS, for the LM loss; ``text``: another
        prompt text, as ``render`` takes it)."""
        tokenized = [
            tokenize_prompt(self.tokenizer, self.render(s, text), cache=self._pieces) for s in samples
        ]
        # one projector pass for the batch's users and one for all its items (row-wise maps: the vectors of one
        # sample at a time, to float rounding, in far fewer kernel launches on a GPU)
        items = [(s.history[-self.config.n_history :], s.candidates) for s in samples]
        index = torch.as_tensor([i for h, c in items for i in (*h, *c)], device=self.device)
        # a projector not built (LoRA without that soft token): zeros the prompt has no placeholder for
        hidden = self.llm.get_input_embeddings().embedding_dim
        users = (
            self.user_proj(torch.stack([s.user_vector.float() for s in samples]).to(self.device))
            if self.user_proj is not None
            else torch.zeros(len(samples), hidden, device=self.device)
        )
        item_vectors = (
            self.item_proj(self.item_table[index])
            if self.item_proj is not None
            else torch.zeros(len(index), hidden, device=self.device)
        )
        projected = item_vectors.split([len(h) + len(c) for h, c in items])
        soft = [
            {"user": users[row : row + 1], "history": vectors[: len(h)], "candidate": vectors[len(h) :]}
            for row, (vectors, (h, _)) in enumerate(zip(projected, items, strict=True))
        ]
        suffix = [self.answer_ids[s.candidates[s.target_pos]] for s in samples] if with_answer else None
        return embed_prompts(self.llm.get_input_embeddings(), tokenized, soft, suffix)

    def head_features(self, samples: list[Sample]) -> tuple[torch.Tensor | Padded, torch.Tensor | Padded]:
        """The head's inputs from one forward pass (``head_reads``): the last prompt position's hidden state
        ``(B, H)`` and each candidate's at its soft token ``(B, C, H)``; or the mean hidden state over the history
        titles' tokens and each candidate's over its title's tokens; or (``title_tokens``) those tokens' hidden
        states themselves, padded: ``(B, n_history · T, H)`` and ``(B, C, T, H)``."""
        if self.config.item_tokens == "none":
            raise ValueError("embedding_head needs candidate soft tokens (item_tokens must not be 'none')")
        batch = self.prompts(samples)
        # the transformer without its LM head: no (L, vocabulary) logits are ever computed
        with first_layers(self.llm, self.config.head_layer):
            hidden = self.llm.base_model(**batch.model_inputs()).last_hidden_state.float()  # (B, L, H)
        if self.config.head_reads == "soft_tokens":
            cand = torch.stack([hidden[row, pos["candidate"]] for row, pos in enumerate(batch.positions)])
            return hidden[:, -1], cand
        history, candidates = self._title_tokens(hidden, batch.positions, samples)
        if self.config.head_reads == "title_tokens":
            return history.flat(), candidates
        # titles: each item's mean over its title's tokens; the query is the mean over the history items
        history_means, candidate_means = history.means(), candidates.means()
        present = history.mask.any(-1, keepdim=True).to(history_means.dtype)  # (B, Nh, 1): a history item
        query = (history_means * present).sum(1) / present.sum(1).clamp_min(1)
        return query, candidate_means

    def _title_tokens(
        self, hidden: torch.Tensor, positions: list[dict[str, list[int]]], samples: list[Sample]
    ) -> tuple[Padded, Padded]:
        """Every history title token's hidden state, ``(B, Nh, T, H)``, and every candidate title token's, ``(B,
        C, T, H)``: an item's title tokens end just before its soft token; zero-padded to sizes fixed by
        ``n_history`` and the longest titles (so that batches concatenate)."""
        spans = self.title_spans
        n_title = {kind: max(spans[kind], default=0) for kind in spans}
        n_items = {"history": self.config.n_history, "candidate": len(samples[0].candidates)}
        padded = {}
        for kind in ("history", "candidate"):
            index = torch.zeros(len(samples), n_items[kind], n_title[kind], dtype=torch.long)
            mask = torch.zeros(index.shape, dtype=torch.bool)
            for row, (pos, sample) in enumerate(zip(positions, samples, strict=True)):
                items = sample.history[-self.config.n_history :] if kind == "history" else sample.candidates
                for col, (p, i) in enumerate(zip(pos[kind], items, strict=True)):
                    index[row, col, : spans[kind][i]] = torch.arange(p - spans[kind][i], p)
                    mask[row, col, : spans[kind][i]] = True
            mask = mask.to(hidden.device)
            rows = torch.arange(len(samples), device=hidden.device)[:, None, None]
            padded[kind] = Padded(hidden[rows, index.to(hidden.device)] * mask[..., None], mask)
        return padded["history"], padded["candidate"]

    def cf_prior(self, samples: list[Sample]) -> torch.Tensor | None:
        """``cf_skip``: each sample's CF logits z-scored over its candidates ``(B, C)`` (a constant row gives
        zeros); ``None`` without ``cf_skip``."""
        if not self.config.cf_skip:
            return None
        if any(s.cf_scores is None for s in samples):
            raise ValueError("cf_skip needs every sample's cf_scores (the CF logits of its candidates)")
        logits = torch.stack([s.cf_scores.float() for s in samples]).numpy()  # (B, C)
        return torch.from_numpy(zscore_rows(logits)).float().to(self.device)

    def cold_mask(self, samples: list[Sample]) -> torch.Tensor:
        """``(B, C)`` true where a candidate has at most ``gate_max_count`` training interactions."""
        if any(s.counts is None for s in samples):
            raise ValueError(
                "the count gate needs every sample's counts (its candidates' training interactions)"
            )
        counts = torch.stack([torch.as_tensor(s.counts) for s in samples]).to(self.device)
        return counts <= self.config.gate_max_count

    def gate_inputs(self, head: torch.Tensor, samples: list[Sample]) -> torch.Tensor:
        """What the count gate weighs, ``(B, C, K)``: z(CF logits), z(head), then ``text_columns``: with
        ``gate_text_overlap`` z(text_overlap) and with ``gate_text_cosine`` z(text_cosine) (or the text matcher's
        score), over the model's ``n_history`` most recent history titles (the floors' scores)."""
        if self.config.gate_text_cosine and self.title_vectors is None:
            raise ValueError(
                "this model's count gate weighs z(text_cosine): build it with the items' title vectors "
                "(item_title_vectors, from stage 2's encode_item_titles node)"
            )
        if self.matcher is not None and self._matcher_vectors is None:
            self._matcher_vectors = torch.as_tensor(
                self.title_vectors, dtype=torch.float32, device=self.matcher.a.device
            )
        histories = [s.history for s in samples]
        candidates = torch.as_tensor([s.candidates for s in samples]).numpy()
        text = text_columns(
            self.config,
            histories,
            candidates,
            self.title_words,
            self.title_vectors,
            self.matcher,
            self._matcher_vectors,
        )
        text += cooccurrence_column(self.config, self.cooccurrence, histories, candidates)
        parts = [self.cf_prior(samples), zscore(head.float())]
        return torch.stack([*parts, *(t.float().to(self.device) for t in text)], dim=-1)

    def fuse(
        self, head: torch.Tensor, samples: list[Sample], gate: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The count gate's score ``(B, C)``: ``a(c)·z(CF) + b(c)·z(head)`` (``+ o(c)·z(text_overlap)``,
        ``+ s(c)·z(text_cosine)``) with
        the weights the row of ``gate`` (default: the model's) for cold candidates or for the rest."""
        return fuse_inputs(
            self.gate_inputs(head, samples), self.cold_mask(samples), self.gate if gate is None else gate
        )

    def head_scores(self, samples: list[Sample]) -> torch.Tensor:
        """What the ``embedding_head`` trains, ``(B, C)``, from one forward pass for the batch: the head's scores
        (plus the CF prior with the plain ``cf_skip``)."""
        scores = self.head(*self.head_features(samples))
        return scores + self.cf_prior(samples) if self.head_corrects_cf else scores

    def title_scores(self, samples: list[Sample]) -> torch.Tensor:
        """Rank-mode scores ``(B, C)``: each candidate title's log-likelihood after its prompt, the prompt's
        key/value cache reused by all its titles. One prompt per pass: ``score_continuations`` takes a padded
        batch, but on the CPU that measured slower (padding; see docs/experiments.md), and no GPU figure exists yet."""
        return torch.cat(
            [
                score_continuations(
                    self.llm,
                    self.prompts([s]),
                    [[self.answer_ids[c] for c in s.candidates]],
                    self.config.length_normalize,
                )
                for s in samples
            ]
        )

    def scores(self, samples: list[Sample]) -> torch.Tensor:
        """The model's candidate scores ``(B, C)``, as its objective ranks. With the count gate, a batch whose
        every candidate the gate weighs the head 0 for (e.g. only cold candidates, where the gate reads the CF
        logits and the text alone) skips the LLM's pass: the head's scores could not move the fused ones, which
        are the same to the bit (``0 · z(head)`` adds 0)."""
        if self.config.objective == "embedding_head":
            if self.gated and not self.reads_head(samples):
                return self.fuse(
                    torch.zeros(len(samples), len(samples[0].candidates), device=self.device), samples
                )
            scores = self.head_scores(samples)
            return self.fuse(scores, samples) if self.gated else scores
        return self.title_scores(samples)

    def reads_head(self, samples: list[Sample]) -> bool:
        """With the count gate: whether it weighs the head's score of any candidate of ``samples`` other than 0."""
        head_weight = self.gate[:, 1][self.cold_mask(samples).long()]
        return bool((head_weight != 0).any())

    def loss(self, samples: list[Sample]) -> torch.Tensor:
        targets = torch.as_tensor([s.target_pos for s in samples], device=self.device)
        if self.config.objective == "embedding_head":
            return F.cross_entropy(self.head_scores(samples), targets)
        if self.config.objective == "listwise":
            return F.cross_entropy(self.title_scores(samples), targets)
        batch = self.prompts(samples, with_answer=True)
        answers = [self.answer_ids[s.candidates[s.target_pos]] for s in samples]
        # answers end every row (prompts are left-padded): logits only for the last len+1 positions
        keep = max(len(a) for a in answers) + 1
        logits = self.llm(**batch.model_inputs(), logits_to_keep=keep).logits.float()  # (B, keep, V)
        labels = torch.full((len(samples), keep), -100, dtype=torch.long, device=self.device)
        for row, answer in enumerate(answers):
            labels[row, keep - len(answer) :] = torch.as_tensor(answer, device=self.device)
        # position t predicts token t+1: only the answer tokens (title + EOS) are scored
        return F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
        )


def text_columns(
    config: Stage2Config,
    histories: list,
    candidates: np.ndarray,
    words: list[frozenset[str]],
    title_vectors: np.ndarray | None,
    matcher: TextMatcher | None,
    matcher_vectors: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The count gate's text inputs ``(R, C)`` each, z-scored per row, as ``config`` weighs them: z(text_overlap)
    with ``gate_text_overlap``; with ``gate_text_cosine`` z(text matcher) when ``matcher`` is given, else
    z(text_cosine). ``words``: each item's title words; ``title_vectors`` ``(N+1, d)``; ``matcher_vectors``: the
    same vectors as a float32 tensor on the matcher's device (a copy saved per call)."""
    columns = []
    if config.gate_text_overlap:
        columns.append(overlap_scores(histories, candidates, words, config.n_history))
    if config.gate_text_cosine:
        if title_vectors is None:
            raise ValueError("a count gate weighing z(text_cosine) needs the items' title vectors")
        if matcher is not None:
            vectors = title_vectors if matcher_vectors is None else matcher_vectors
            columns.append(match_scores(matcher, histories, candidates, vectors, config.n_history))
        else:
            columns.append(cosine_scores(histories, candidates, title_vectors, config.n_history))
    return [torch.from_numpy(zscore_rows(c)).float() for c in columns]


def cooccurrence_column(
    config: Stage2Config,
    table: CooccurrenceTable | None,
    histories: list,
    candidates: np.ndarray,
) -> list[torch.Tensor]:
    """With ``gate_cooccurrence``: the gate's co-occurrence input ``(R, C)``, z(log1p(the candidate's
    co-occurrence score with the ``n_history`` most recent history items)) (zeros where ``table`` is ``None``:
    another domain's items); without it, no column."""
    if not config.gate_cooccurrence:
        return []
    if table is None:
        return [torch.zeros(np.asarray(candidates).shape)]
    raw = cooccurrence_scores(table, histories, candidates, config.n_history, config.cooccurrence_decay)
    return [torch.from_numpy(zscore_rows(np.log1p(raw))).float()]


def fuse_inputs(inputs: torch.Tensor, cold: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``(B, C)``: each candidate's ``gate_inputs`` ``(B, C, K)`` weighed by the row of ``gate`` ``(2, K)`` its
    ``cold`` flag picks."""
    return (gate.to(inputs.device)[cold.long()] * inputs).sum(-1)


def gate_weights(config, gate: torch.Tensor) -> dict[str, float]:
    """The weights of ``gate`` ``(2, K)`` by name: ``cold_cf``, ``cold_head``, ``other_cf``, ``other_head``, then
    ``cold_<floor>`` and ``other_<floor>`` for each text floor ``config`` (a ``Stage2ModelConfig``) weighs."""
    weights = {
        "cold_cf": float(gate[1, 0]),
        "cold_head": float(gate[1, 1]),
        "other_cf": float(gate[0, 0]),
        "other_head": float(gate[0, 1]),
    }
    floors = [
        ("text_overlap", config.gate_text_overlap),
        ("text_cosine", config.gate_text_cosine),
        ("cooccurrence", config.gate_cooccurrence),
    ]
    for column, name in enumerate((name for name, on in floors if on), start=2):
        weights.update({f"cold_{name}": float(gate[1, column]), f"other_{name}": float(gate[0, column])})
    return weights


def recommender_from_checkpoint(
    checkpoint,
    llm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    item_table: torch.Tensor,
    titles: list[str],
    wording: dict[str, str] | None = None,
    title_vectors: torch.Tensor | None = None,
    foreign_items: bool = False,
) -> SoftPromptRecommender:
    """Rebuild a trained recommender from its projector checkpoint around an already loaded LLM.

    ``item_table`` may differ from the training one (the SBERT variant's ``q_i``, another dataset's items) as
    long as its width matches; ``wording`` replaces the training dataset's (cross-domain prompts);
    ``title_vectors``: the items' title vectors, which a gate weighing z(text_cosine) needs; ``foreign_items``:
    the items are another domain's (the co-occurrence table, of the training items, scores them 0).
    """
    meta = require_kind(checkpoint, "stage2_projectors")
    if item_table.shape[1] != int(meta["item_dim"]):
        raise CheckpointMismatchError(
            f"the stage-2 projectors take d_item={meta['item_dim']}, the item table has {item_table.shape[1]}"
        )
    model = SoftPromptRecommender(
        llm,
        tokenizer,
        PromptTemplate(**json.loads(meta["template"])),
        wording or json.loads(meta["wording"]),
        item_table,
        titles,
        int(meta["cf_dim"]),
        Stage2Config(**{**LEGACY_STAGE2, **json.loads(meta["config"])}),
        title_vectors,
        text_dim=int(checkpoint.tensors["matcher.a"].shape[0]) if "matcher.a" in checkpoint.tensors else None,
        cooccurrence=checkpoint_cooccurrence(checkpoint),
        foreign_items=foreign_items,
    )
    load_state_checked(model, checkpoint.tensors, "stage-2 checkpoint (trained for another LLM or backbone?)")
    return model.eval()


def checkpoint_cooccurrence(checkpoint) -> CooccurrenceTable | None:
    """The co-occurrence table a stage-2 checkpoint saved (``gate_cooccurrence``), or ``None``."""
    tensors = checkpoint.tensors
    if "cooccurrence_keys" not in tensors:
        return None
    return CooccurrenceTable(
        tensors["cooccurrence_keys"].cpu().numpy().astype(np.int64),
        tensors["cooccurrence_weights"].cpu().numpy().astype(np.float32),
        int(tensors["cooccurrence_n_keys"][0]),
    )
