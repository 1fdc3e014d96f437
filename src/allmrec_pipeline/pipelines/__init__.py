"""The six pipelines of the chain (``ablations``, their stage-2 ablation nodes, is composed in the registry).

Each package exposes ``create_pipeline`` lazily (``lazy_create_pipeline``), so that its node modules (plain
functions) can be imported where Kedro is not installed, e.g. by a benchmark on a bare GPU machine.
"""

import importlib
from collections.abc import Callable


def lazy_create_pipeline(package: str) -> Callable[[str], object]:
    """A module-level ``__getattr__`` (PEP 562) that imports ``<package>.pipeline.create_pipeline`` on first use."""

    def __getattr__(name: str) -> object:
        if name == "create_pipeline":
            return importlib.import_module(f"{package}.pipeline").create_pipeline
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
