"""Wiring of ``generate_preferences``: the users and their truth once, one node per model, then the summary.

Not part of the default run (the registry leaves it out of ``__default__``): it reads A-LLMRec's checkpoint and
TALLRec's adapters, so it runs after ``kedro run`` and ``kedro run --pipelines ablations``.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from .nodes import LLM_MODELS, answer_with_floors, answer_with_llm, preference_rows, summarize_preferences

LLM_INPUTS = {
    "rows": "preference_rows",
    "setup": "preference_setup",
    "cf_model": "cf_model",
    "joint_item_embeddings": "joint_item_embeddings",
    "items": "items",
    "item_index": "item_index",
    "generate_preferences": "params:generate_preferences",
    "stage2": "params:stage2",
    "llms": "params:llms",
    "llm": "params:llm",
    "dataset": "params:dataset",
}
CHECKPOINTS = {"a_llmrec": "stage2_model", "tallrec": "stage2_tallrec_model"}


def _llm_node(model: str) -> Node:
    inputs = dict(LLM_INPUTS)
    if model in CHECKPOINTS:
        inputs["checkpoint"] = CHECKPOINTS[model]
    return Node(
        func=update_wrapper(partial(answer_with_llm, model), answer_with_llm),
        inputs=inputs,
        outputs=f"preference_answers_{model}",
        name=f"ask_{model}",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=preference_rows,
                inputs=[
                    "items",
                    "item_index",
                    "eval_candidates",
                    "sequences",
                    "params:generate_preferences",
                    "params:seed",
                ],
                outputs=["preference_rows", "preference_setup"],
                name="preference_rows",
            ),
            Node(
                func=answer_with_floors,
                inputs=[
                    "preference_rows",
                    "preference_setup",
                    "items",
                    "item_index",
                    "item_popularity",
                    "params:stage2",
                ],
                outputs="preference_answers_floors",
                name="ask_floors",
            ),
            *(_llm_node(model) for model in LLM_MODELS),
            Node(
                func=summarize_preferences,
                inputs=[
                    "preference_rows",
                    "preference_setup",
                    "items",
                    "item_index",
                    "params:generate_preferences",
                    "params:evaluate_scenarios",
                    "params:seed",
                    "preference_answers_floors",
                    *(f"preference_answers_{model}" for model in LLM_MODELS),
                ],
                outputs=[
                    "preference_generations",
                    "preference_metrics",
                    "preference_differences",
                    "preference_mlflow_metrics",
                    "preferences_markdown",
                ],
                name="summarize_preferences",
            ),
        ]
    )
