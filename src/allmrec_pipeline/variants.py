"""The stage-2 variants the pipelines wire, each a key of ``stage2.variants``: A-LLMRec, trained and scored by
``stage2`` and ``evaluate_scenarios``, and the trained baselines (MLP-LLM, TALLRec) and the ablations, whose nodes carry
``ABLATION_TAG`` and run only in the ``ablations`` pipeline (``kedro run --pipelines ablations``, after the default
chain), so that the default run trains only what it scores."""

DEFAULT_VARIANTS = ("a_llmrec",)
ABLATION_VARIANTS = (
    "no_user",
    "random_items",
    "titles_only",
    "no_cf_skip",
    "no_gate",
    "no_overlap_gate",
    "no_cosine_gate",
    "no_cooccurrence_gate",
)
TRAINED_BASELINES = ("mlp_llm", "tallrec")  # the paper's baselines with stage-2 training of their own
ABLATION_RUN_VARIANTS = (*TRAINED_BASELINES, *ABLATION_VARIANTS)  # the baselines, then what each piece adds
ABLATION_TAG = "ablation"

# the models evaluate_scenarios can score, each by a node of its own
# no LLM, no training on the rows' users; the last three read the stage-2 model's checkpoint: its fitted text
# matcher, its co-occurrence table and the LLM-free part of its count gate
FLOORS = (
    "popularity",
    "text_overlap",
    "text_cosine",
    "cf_text",
    "text_matcher",
    "cooccurrence",
    "cf_text_gate",
)
WITHOUT_LLM = ("cf", *FLOORS)  # scored on every row, always in rank mode
LLM_BASELINES = ("llm_only", "a_llmrec", "a_llmrec_sbert", *TRAINED_BASELINES)  # the paper's table
MODELS = (*WITHOUT_LLM, *LLM_BASELINES, *ABLATION_VARIANTS)
# what each run can score: the default chain every model whose inputs it makes (evaluate_scenarios.models); the
# ablations run mlp_llm and the ablations beside the models whose inputs it shares (ablation_models)
DEFAULT_MODELS = (*WITHOUT_LLM, "llm_only", "a_llmrec", "a_llmrec_sbert")
ABLATION_RUN_MODELS = (
    "cf",
    "popularity",
    "text_overlap",
    "llm_only",
    "a_llmrec",
    "a_llmrec_sbert",
    *ABLATION_RUN_VARIANTS,
)
