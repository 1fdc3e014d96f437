"""Wiring of ``ingest_amazon``: the source domain, and the same nodes under the ``cross_domain`` namespace."""

from kedro.pipeline import Node, Pipeline

from .nodes import clean_items, filter_interactions, read_raw_source, summarize_ingest

CROSS_DOMAIN = "cross_domain"


def create_domain_pipeline() -> Pipeline:
    """The ingest nodes for one dataset (un-namespaced names)."""
    return Pipeline(
        [
            Node(
                func=read_raw_source,
                inputs=["raw_source", "params:ingest.source"],
                outputs=["raw_interactions", "raw_items", "ingest_read_report"],
                name="read_raw_source",
            ),
            Node(
                func=clean_items,
                inputs=["raw_items", "params:ingest.text"],
                outputs=["items_with_text", "ingest_items_report"],
                name="clean_items",
            ),
            Node(
                func=filter_interactions,
                inputs=["raw_interactions", "items_with_text", "params:ingest.filters"],
                outputs=["interactions", "items", "ingest_filter_report"],
                name="filter_interactions",
            ),
            Node(
                func=summarize_ingest,
                inputs=["ingest_read_report", "ingest_items_report", "ingest_filter_report"],
                outputs=["ingest_report", "ingest_metrics"],
                name="summarize_ingest",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Source domain plus the cross-domain dataset (switched by ``cross_domain.ingest.source.enabled``)."""
    domain = create_domain_pipeline()
    return domain + Pipeline(domain, namespace=CROSS_DOMAIN)
