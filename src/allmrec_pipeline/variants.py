"""The stage-2 variants the pipelines wire, each a key of ``stage2.variants``: the default ones, trained and scored
by ``stage2`` and ``evaluate_scenarios``, and the ablations, whose nodes carry ``ABLATION_TAG`` and run only in
the ``ablations`` pipeline (``kedro run --pipeline ablations``, after the default chain)."""

DEFAULT_VARIANTS = ("a_llmrec", "mlp_llm")
ABLATION_VARIANTS = ("no_user", "random_items", "titles_only", "no_cf_skip", "no_gate")
ABLATION_TAG = "ablation"

# the models evaluate_scenarios can score, each by a node of its own
FLOORS = ("popularity", "text_overlap", "text_cosine", "cf_text")  # no LLM, no training on the rows' users
WITHOUT_LLM = ("cf", *FLOORS)  # scored on every row, always in rank mode
LLM_BASELINES = ("llm_only", "a_llmrec", "a_llmrec_sbert", "mlp_llm")  # the paper's table
MODELS = (*WITHOUT_LLM, *LLM_BASELINES, *ABLATION_VARIANTS)
# what each run can score: the default chain every model but the ablations (evaluate_scenarios.models); the
# ablations run the ablations beside the models whose inputs it shares (evaluate_scenarios.ablation_models)
DEFAULT_MODELS = (*WITHOUT_LLM, *LLM_BASELINES)
ABLATION_RUN_MODELS = (
    "cf",
    "popularity",
    "text_overlap",
    "llm_only",
    "a_llmrec",
    "a_llmrec_sbert",
    *ABLATION_VARIANTS,
)
