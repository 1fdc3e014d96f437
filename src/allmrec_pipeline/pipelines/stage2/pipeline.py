"""Wiring of ``stage2``: the LLM named by ``params:llm``, over the backbone named by ``params:backbone``.

First every item title through the frozen sentence encoder (``encode_item_titles``: the title vectors of the
count gate's z(text_cosine), and of the ``text_cosine`` floor). Then one node per stage-2 variant (``stage2.variants`` holds their overrides): A-LLMRec runs by default; the MLP-LLM
baseline and the ablations carry the tag ``ablation`` and run with ``kedro run --pipelines ablations``.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from allmrec_pipeline.llm.inputs import encode_item_titles
from allmrec_pipeline.variants import ABLATION_RUN_VARIANTS, ABLATION_TAG, DEFAULT_VARIANTS

from .nodes import train_projectors

INPUTS = {
    "cf_model": "cf_model",
    "joint_item_embeddings": "joint_item_embeddings",
    "train_sequences": "train_sequences",
    "sequences": "sequences",
    "eval_candidates": "eval_candidates",
    "item_index": "item_index",
    "items": "items",
    "item_title_vectors": "item_title_vectors",
    "item_popularity": "item_popularity",
    "stage2": "params:stage2",
    "llms": "params:llms",
    "llm": "params:llm",
    "dataset": "params:dataset",
    "seed": "params:seed",
    "checkpoints": "params:checkpoints",
}


def outputs(variant: str) -> list[str]:
    """Catalog names of a variant's checkpoint, metrics and report (A-LLMRec keeps the plain names)."""
    prefix = "stage2" if variant == "a_llmrec" else f"stage2_{variant}"
    return [f"{prefix}_model", f"{prefix}_metrics", f"{prefix}_report"]


def _node(variant: str, tags: tuple[str, ...] = ()) -> Node:
    func = update_wrapper(partial(train_projectors, variant=variant), train_projectors)
    name = "train_projectors" if variant == "a_llmrec" else f"train_projectors_{variant}"
    return Node(func=func, inputs=INPUTS, outputs=outputs(variant), name=name, tags=list(tags))


def create_pipeline(**kwargs) -> Pipeline:
    encode = Node(
        func=encode_item_titles,
        inputs=["items", "item_index", "params:title_encoder"],
        outputs="item_title_vectors",
        name="encode_item_titles",
    )
    return Pipeline(
        [encode]
        + [_node(v) for v in DEFAULT_VARIANTS]
        + [_node(v, (ABLATION_TAG,)) for v in ABLATION_RUN_VARIANTS]
    )
