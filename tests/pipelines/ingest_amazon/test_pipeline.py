"""The ingest_amazon pipeline run with SequentialRunner on an in-memory catalog."""

from __future__ import annotations

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from allmrec_pipeline.pipelines.ingest_amazon import create_pipeline


def _params(enabled: bool = True) -> dict:
    return {
        "source": {"enabled": enabled, "kind": "sequence_file", "max_bad_fraction": 0.01},
        "text": {"missing_title_policy": "drop", "placeholder_title": "Item {item_id}"},
        "filters": {
            "rating_threshold": None,
            "rating_operator": ">=",
            "user_k": 5,
            "item_k": 2,
            "max_unknown_item_fraction": 0.05,
        },
    }


def test_pipeline_runs_both_domains(fixtures):
    seq = fixtures / "sequence_file"
    files = {"sequences": [str(seq / "user_sequence.txt")], "items": [str(seq / "items_asin_title.tsv")]}
    catalog = DataCatalog(
        {"raw_source": MemoryDataset(files), "cross_domain.raw_source": MemoryDataset(files)}
    )
    for prefix, enabled in (("", True), ("cross_domain.", False)):
        for group, values in _params(enabled).items():
            catalog[f"params:{prefix}ingest.{group}"] = values

    SequentialRunner().run(create_pipeline(), catalog)

    interactions = catalog.load("interactions")
    report = catalog.load("ingest_report")
    metrics = catalog.load("ingest_metrics")
    assert report["filter"]["final"]["interactions"] == len(interactions) > 0
    assert (interactions.groupby("user_id").size() >= 5).all()
    assert (interactions.groupby("item_id").size() >= 2).all()
    assert metrics["final.interactions"] == len(interactions)
    assert metrics["k_core_passes"] >= 2  # this slice is not a k-core of itself
    steps = [step["step"] for step in report["filter"]["steps"]]
    assert steps == ["read", "deduplicate_events", "drop_items_without_text", "rating_filter", "k_core"]
    # The cross-domain copy was switched off: empty tables with the contract's columns.
    assert catalog.load("cross_domain_interactions").empty
    assert catalog.load("cross_domain.ingest_metrics") == {"enabled": 0.0}
