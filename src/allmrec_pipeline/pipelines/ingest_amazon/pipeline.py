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
                inputs=[
                    "raw_interactions",
                    "items_with_text",
                    "params:ingest.filters",
                    "ingest_items_report",
                ],
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
    """Source domain plus the cross-domain dataset (switched by ``cross_domain.ingest.source.enabled``).

    The two tables later pipelines read are named ``cross_domain_<name>``, not ``cross_domain.<name>``: Kedro
    reserves dotted names for datasets used inside their namespace, and warns when other nodes read them.
    """
    domain = create_domain_pipeline()
    shared = {name: f"{CROSS_DOMAIN}_{name}" for name in ("interactions", "items")}
    return domain + Pipeline(domain, namespace=CROSS_DOMAIN, outputs=shared)
