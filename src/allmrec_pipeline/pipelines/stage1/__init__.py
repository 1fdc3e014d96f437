"""stage1: not implemented yet (see the issue tracker); registered so that the chain's names are stable."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
