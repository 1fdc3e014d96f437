"""ablations: the stage-2 ablations (no user token, random item table, titles only), trained and scored on the
same rows as the default models; run after the default chain with ``kedro run --pipeline ablations``.

``create_pipeline`` is imported on first use, like the other pipeline packages.
"""

__all__ = ["create_pipeline"]


def __getattr__(name: str):
    if name == "create_pipeline":
        from .pipeline import create_pipeline

        return create_pipeline
    raise AttributeError(name)
