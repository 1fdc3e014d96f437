"""The schema of the run's parameters: every key of ``conf/base/parameters*.yml``, its type, choices and range.

The YAML is the one source of values; this module holds no defaults (every key is required, and ``conf/base``
provides each). ``check_parameters`` validates the merged parameters of a run (``conf/base`` + the environment +
``conf/local`` + ``--params``) before its first node: a misspelled or unknown key, a wrong type or a value out of
range fails with a ``ConfigError`` naming each offending key (and, for an unknown key, the nearest known one).
"""

from __future__ import annotations

import copy
import difflib
import functools
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from allmrec_pipeline.errors import ConfigError
from allmrec_pipeline.variants import ABLATION_RUN_MODELS, ABLATION_RUN_VARIANTS, DEFAULT_MODELS

PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]


def _device(value: str) -> str:
    head, _, index = value.partition(":")
    if value in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit()):
        return value
    raise ValueError(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N")


Device = Annotated[str, AfterValidator(_device)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
VARIANT_SECTIONS = ("item_source", "model", "training")


class Section(BaseModel):
    """A block of parameters: every key required, none unknown, each value of its type as given (strict: the
    nodes read the raw values, so ``"3"`` is not an int and ``"no"`` not a bool; an int is a float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---- parameters.yml ---------------------------------------------------------------------------------------------
class Evaluate(Section):
    max_users: PositiveInt | None


# ---- parameters_ingest_amazon.yml -------------------------------------------------------------------------------
Bounds = Annotated[list[float], Field(min_length=2, max_length=2)]


class Source(Section):
    enabled: bool
    kind: Literal["amazon2018", "amazon2014", "amazon2023", "sequence_file", "tables", "recbole"]
    max_bad_fraction: Fraction
    timestamp_range: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)] | None
    rating_range: Bounds | None

    @field_validator("timestamp_range", "rating_range")
    @classmethod
    def _ordered(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"the lower bound {value[0]} is above the upper bound {value[1]}")
        return value


class Text(Section):
    missing_title_policy: Literal["drop", "placeholder"]
    placeholder_title: str


class Filters(Section):
    rating_threshold: float | None
    rating_operator: Literal[">=", ">"]
    user_k: PositiveInt
    item_k: PositiveInt
    max_unknown_item_fraction: Fraction


class Ingest(Section):
    source: Source
    text: Text
    filters: Filters


class CrossDomain(Section):
    ingest: Ingest


# ---- parameters_split_sequences.yml -----------------------------------------------------------------------------
class Popularity(Section):
    rule: Literal["rank", "mass"]
    fraction: Annotated[float, Field(gt=0, le=0.5)]


class ColdUsers(Section):
    n_users: Count


class Split(Section):
    min_interactions: Annotated[int, Field(ge=3)]
    max_seq_len: PositiveInt
    n_candidates: Annotated[int, Field(ge=2)]
    train_users_limit: PositiveInt | None
    popularity: Popularity
    cold_users: ColdUsers


# ---- parameters_pretrain_cf.yml ---------------------------------------------------------------------------------
class CFTraining(Section):
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: Positive
    weight_decay: NonNegative
    loss: Literal["bce", "ce"]
    patience: PositiveInt
    eval_every: PositiveInt
    eval_batch_size: PositiveInt


class Backbone(Section):
    hidden_size: PositiveInt
    dropout: Annotated[float, Field(ge=0, lt=1)]
    max_seq_len: PositiveInt


class SASRec(Backbone):
    num_blocks: PositiveInt
    num_heads: PositiveInt


class GRU4Rec(Backbone):
    num_layers: PositiveInt


class NextItNet(Backbone):
    kernel_size: PositiveInt
    dilations: list[PositiveInt] = Field(min_length=1)
    num_stacks: PositiveInt


class NCF(Backbone):
    mlp_layers: list[PositiveInt] = Field(min_length=1)
    score_chunk: PositiveInt


class Backbones(Section):
    sasrec: SASRec
    gru4rec: GRU4Rec
    nextitnet: NextItNet
    ncf: NCF


class CFEvaluation(Section):
    scenarios: list[Literal["overall", "cold_item", "warm_item", "cold_user"]] = Field(min_length=1)
    full_ranking: bool
    bootstrap_resamples: PositiveInt
    confidence: Annotated[float, Field(gt=0, lt=1)]


class PretrainCF(Section):
    training: CFTraining
    models: Backbones
    evaluation: CFEvaluation


# ---- parameters_stage1.yml --------------------------------------------------------------------------------------
class Stage1Text(Section):
    template: str
    template_without_description: str
    max_tokens: PositiveInt


class SBERT(Section):
    model: str
    freeze: bool
    trainable_layers: PositiveInt | None
    chunk_size: Count
    cache_frozen_layers: bool


class Alignment(Section):
    latent_dim: PositiveInt
    alpha: NonNegative
    beta: NonNegative
    use_matching: bool
    use_item_recon: bool
    use_text_recon: bool
    use_rec: bool
    standardize_inputs: bool


class Stage1Training(Section):
    epochs: Count
    frozen_text_epochs: Count
    batch_size: PositiveInt
    lr: Positive
    sbert_lr: Positive | None
    all_items: bool
    max_examples: PositiveInt | None
    recall_sample: PositiveInt


class Stage1(Section):
    text_path_max_count: Count
    text: Stage1Text
    sbert: SBERT
    alignment: Alignment
    training: Stage1Training


# ---- parameters_stage2.yml --------------------------------------------------------------------------------------
class LLM(Section):
    model: str
    gguf_file: str | None
    revision: str | None
    dtype: Literal["auto", "float32", "bfloat16", "float16"]
    device: Device


class Template(Section):
    text: str
    history_item: str
    candidate_item: str
    separator: str


class Wording(Section):
    noun: str
    verb: str
    verb_present: str


class Stage2Model(Section):
    objective: Literal["lm", "listwise", "embedding_head"]
    n_history: PositiveInt
    max_title_tokens: PositiveInt
    use_user: bool
    item_tokens: Literal["joint", "none", "random"]
    soft_token_norm: Literal["match"] | Positive | None
    length_normalize: bool
    title_format: Literal["plain", "quoted"]
    head_dim: PositiveInt
    head_layer: PositiveInt | None
    cf_skip: bool
    head_reads: Literal["titles", "title_tokens", "soft_tokens"]
    gate_max_count: Count | None
    gate_cold_share: Annotated[float, Field(gt=0, lt=1)] | None
    gate_text_overlap: bool
    gate_text_cosine: bool
    gate_cosine_rank: PositiveInt | None
    gate_cooccurrence: bool
    cooccurrence_window: PositiveInt
    cooccurrence_backward: NonNegative
    cooccurrence_decay: Annotated[float, Field(gt=0, le=1)]
    head_init: Literal["random", "identity"]
    lora_rank: PositiveInt | None
    lora_alpha: Positive
    lora_dropout: float = Field(ge=0, lt=1)
    lora_target_modules: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _overlap_needs_the_gate(self) -> Stage2Model:
        if self.gate_text_overlap and not (self.cf_skip and self.gate_max_count is not None):
            raise ValueError(
                "gate_text_overlap true needs the count gate (cf_skip true, gate_max_count set): "
                "set gate_text_overlap to false"
            )
        if self.gate_text_cosine and not (self.cf_skip and self.gate_max_count is not None):
            raise ValueError(
                "gate_text_cosine true needs the count gate (cf_skip true, gate_max_count set): "
                "set gate_text_cosine to false"
            )
        if self.gate_cooccurrence and not (self.cf_skip and self.gate_max_count is not None):
            raise ValueError(
                "gate_cooccurrence true needs the count gate (cf_skip true, gate_max_count set): "
                "set gate_cooccurrence to false"
            )
        return self


class GateBoundsSection(Section):
    """``stage2.training.gate_bounds``: the least value of each paired Hit@1 difference (``llm.gate_bounds``)."""

    overall_minus_cf: float
    cold_minus_text_overlap: float
    cold_minus_cf: float
    warm_minus_cf: float


class Stage2Training(Section):
    epochs: PositiveInt
    batch_size: PositiveInt
    grad_accumulation: PositiveInt
    lr: Positive
    max_train_users: PositiveInt | None
    targets: Literal["held_out", "last_training_item"]
    n_negatives: PositiveInt
    max_valid_rows: Count
    head_warmup_epochs: Count
    head_warmup_users: PositiveInt | None
    head_lr: NonNegative | None
    gate_valid_rows: Count
    matcher_steps: Count
    matcher_batch_size: PositiveInt
    matcher_negatives: PositiveInt
    matcher_lr: Positive
    matcher_max_count: Count | None
    gate_choice: Literal["nested", "bounds"]
    gate_bounds: GateBoundsSection
    gate_point: Literal["best", "centroid", "merit"]


class Stage2Core(Section):
    """One stage-2 model's settings: ``stage2`` without its variants, and each variant after its overrides."""

    template: Template
    wording: dict[str, Wording]
    item_source: Literal["joint", "cf"]
    model: Stage2Model
    training: Stage2Training


class VariantOverride(Section):
    """``stage2.variants.<name>``: the keys it replaces; each is checked again in the merged settings."""

    item_source: Any = None
    model: dict[str, Any] | None = None
    training: dict[str, Any] | None = None


class Stage2(Stage2Core):
    variants: dict[str, VariantOverride | None]


# ---- parameters_evaluate_scenarios.yml --------------------------------------------------------------------------
class Floors(Section):
    n_history: PositiveInt
    cf_text_weights: list[NonNegative] = Field(min_length=1)


class Generate(Section):
    max_new_tokens: PositiveInt
    fuzzy_threshold: Fraction


Scenario = Literal["overall", "cold_item", "warm_item", "cold_user", "cross_domain"]


class EvaluateScenarios(Section):
    mode: Literal["rank", "generate"]
    models: list[Literal[DEFAULT_MODELS]] = Field(min_length=1)  # the ablations: ablation_models
    ablation_models: list[Literal[ABLATION_RUN_MODELS]]
    scenarios: list[Scenario] = Field(min_length=1)
    max_rows: PositiveInt | None
    max_llm_rows: PositiveInt | None
    max_llm_rows_by_scenario: dict[Scenario, PositiveInt | None]
    ablation_max_llm_rows: PositiveInt | None
    batch_size: PositiveInt
    floors: Floors
    generate: Generate
    bootstrap_resamples: PositiveInt
    confidence: Annotated[float, Field(gt=0, lt=1)]

    @field_validator("models", mode="before")
    @classmethod
    def _trained_by_ablations(cls, value: Any) -> Any:
        moved = [m for m in value if m in ABLATION_RUN_VARIANTS] if isinstance(value, list) else []
        if moved:
            raise ValueError(
                f"{', '.join(moved)} {'is' if len(moved) == 1 else 'are'} trained and scored by `kedro run "
                "--pipelines ablations`: list it in evaluate_scenarios.ablation_models"
            )
        return value


# ---- parameters_generate_preferences.yml ------------------------------------------------------------------------
class GeneratePreferences(Section):
    max_users: PositiveInt | None
    label_noun: Annotated[str, Field(min_length=1)]
    template: str
    batch_size: PositiveInt
    max_new_tokens: PositiveInt
    shown_users: Count

    @field_validator("template")
    @classmethod
    def _asks_with_labels(cls, value: str) -> str:
        if "{labels}" not in value or "{history}" not in value:
            raise ValueError("the question must hold {history} and {labels}")
        return value


# ---- the whole tree ---------------------------------------------------------------------------------------------
class Gate(Section):
    model: str
    reference: Literal["cf", "best_floor"]
    scenario: str
    metric: Literal["hit_at_1", "ndcg_at_10"]
    min_ci_low: float


class RegisterModel(Section):
    retrieve: PositiveInt
    k: PositiveInt
    batch_size: PositiveInt
    gate: Gate


class Checkpoints(Section):
    dir: str | None
    stage2_every_steps: PositiveInt


class Parameters(Section):
    dataset: str
    cross_domain_dataset: str
    backbone: Literal["sasrec", "gru4rec", "nextitnet", "ncf"]
    llm: str
    seed: Count
    device: Device
    cross_domain_enabled: bool
    title_encoder: str
    evaluate: Evaluate
    checkpoints: Checkpoints
    ingest: Ingest
    cross_domain: CrossDomain
    split: Split
    pretrain_cf: PretrainCF
    cf_backbone_config: dict[str, Any]  # derived: ${pretrain_cf.models.${backbone}}
    stage1: Stage1
    llms: dict[str, LLM] = Field(min_length=1)
    stage2: Stage2
    evaluate_scenarios: EvaluateScenarios
    generate_preferences: GeneratePreferences
    register_model: RegisterModel


def base_parameters() -> dict[str, Any]:
    """The parameters of a default ``kedro run`` (``conf/base`` alone, the run-time switches at their defaults),
    checked: what the Python API builds the configs from when it wants the pipelines' values (a fresh copy)."""
    return copy.deepcopy(_base_parameters())


@functools.cache
def _base_parameters() -> dict[str, Any]:
    params = load_parameters("base")
    check_parameters(params)
    return params


def load_parameters(env: str) -> dict[str, Any]:
    """The merged parameters of ``conf/base`` + ``conf/<env>`` as a run of that environment reads them (the
    run-time switches at their defaults), unchecked; a config loader alone, so no project hook runs."""
    from kedro.config import OmegaConfigLoader

    conf = Path(__file__).resolve().parents[2] / "conf"
    loader = OmegaConfigLoader(
        str(conf), base_env="base", default_run_env=env, merge_strategy={"parameters": "soft"}
    )
    return dict(loader["parameters"])


def merge_variant(stage2: dict[str, Any], variant: str) -> dict[str, Any]:
    """``stage2`` with the overrides of ``stage2.variants.<variant>`` (``item_source``, ``model``, ``training``);
    a ``model`` or ``training`` override replaces only the keys it names."""
    variants = stage2.get("variants") or {}
    if variant not in variants:
        raise ConfigError(
            f"no stage-2 variant {variant!r}: add stage2.variants.{variant} (known: {sorted(variants)})"
        )
    overrides = variants[variant] or {}
    unknown = sorted(set(overrides) - set(VARIANT_SECTIONS))
    if unknown:
        raise ConfigError(
            f"params 'stage2.variants.{variant}' has unknown key(s) {unknown}: use {', '.join(VARIANT_SECTIONS)}"
        )
    merged = dict(stage2)
    for key, value in overrides.items():
        merged[key] = {**stage2[key], **value} if isinstance(value, dict) else value
    return merged


def check_parameters(params: dict[str, Any]) -> None:
    """Validate a run's merged parameters against ``Parameters`` and every stage-2 variant's merged settings.

    Raises:
        ConfigError: one line per offending key, e.g. ``pretrain_cf.trainig: unknown key (nearest known:
            'training')`` or ``pretrain_cf.training.lr: Input should be a valid number ... (got 'abc')``.
    """
    problems = _problems(Parameters, params, ())
    stage2 = params.get("stage2")
    if not problems and isinstance(stage2, dict):  # the base passed: a variant's faults are its overrides'
        for name in stage2.get("variants") or {}:
            merged = {k: v for k, v in merge_variant(stage2, name).items() if k != "variants"}
            problems += _problems(Stage2Core, merged, ("stage2", "variants", name))
    if not problems and params["cf_backbone_config"] != params["pretrain_cf"]["models"][params["backbone"]]:
        problems.append(
            "cf_backbone_config: derived from pretrain_cf.models.<backbone>; set the backbone's keys there and "
            "leave cf_backbone_config as conf/base writes it"
        )
    if problems:
        raise ConfigError(
            "The run's parameters do not pass the schema (conf/base is the reference; check conf/<env>, "
            "conf/local and --params); nothing was computed:\n- " + "\n- ".join(problems)
        )


def _problems(schema: type[BaseModel], values: Any, prefix: tuple) -> list[str]:
    try:
        schema.model_validate(values)
    except ValidationError as exc:
        found: dict[str, list[dict]] = {}
        for error in exc.errors():
            location = _value_path(values, tuple(error["loc"]))
            found.setdefault(".".join(map(str, prefix + location)), []).append({**error, "loc": location})
        lines = []
        for key, errors in found.items():
            error, location = errors[0], errors[0]["loc"]
            if error["type"] == "extra_forbidden":
                known = _known_keys(schema, location[:-1])
                nearest = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.5)
                hint = f"nearest known: {nearest[0]!r}" if nearest else f"known: {', '.join(known)}"
                lines.append(f"{key}: unknown key ({hint})")
            elif error["type"] == "missing":
                lines.append(f"{key}: missing (conf/base/parameters*.yml sets every key)")
            else:  # the branches of a union (e.g. 'match' or a number) each say what they take
                wanted = "; or ".join(dict.fromkeys(e["msg"] for e in errors))
                lines.append(f"{key}: {wanted} (got {error['input']!r}){_number_hint(error['input'])}")
        return lines
    return []


def _number_hint(value: Any) -> str:
    """YAML reads ``1e-4`` (no dot) as a string: say how to write the number."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ""
        return f"; YAML reads {value!r} as text: write {number!r}"
    return ""


def _value_path(values: Any, location: tuple) -> tuple:
    """``location`` up to the value it reaches: pydantic appends the branch of a union (``literal['match']``,
    ``constrained-float``) to the key it failed on."""
    path, node = [], values
    for step in location:
        if (
            isinstance(node, dict)
            and step in node
            or isinstance(node, list)
            and isinstance(step, int)
            and 0 <= step < len(node)
        ):
            node = node[step]
        elif isinstance(node, dict):  # an unknown or missing key: named, then nothing below it
            path.append(step)
            break
        else:
            break
        path.append(step)
    return tuple(path)


def _known_keys(schema: type[BaseModel], location: tuple) -> list[str]:
    """The keys the schema accepts at ``location`` (a dict level takes any key: its values' keys below)."""
    node: Any = schema
    for step in location:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = node.model_fields[str(step)].annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return []
    node = _unwrap(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """The model or ``dict`` inside ``Annotated[...]`` / ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in options if (isinstance(a, type) and issubclass(a, BaseModel))]
            annotation = (models or options)[0]
        else:
            return annotation
