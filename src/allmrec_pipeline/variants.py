"""The stage-2 variants the pipelines wire, each a key of ``stage2.variants``: the default ones, trained and scored
by ``stage2`` and ``evaluate_scenarios``, and the ablations, whose nodes carry ``ABLATION_TAG`` and run only in
the ``ablations`` pipeline (``kedro run --pipeline ablations``, after the default chain)."""

DEFAULT_VARIANTS = ("a_llmrec", "mlp_llm")
ABLATION_VARIANTS = ("no_user", "random_items", "titles_only", "no_cf_skip", "no_gate")
ABLATION_TAG = "ablation"
