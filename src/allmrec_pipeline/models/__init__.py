"""Plain PyTorch models: CF backbones behind one interface, stage-1 alignment, stage-2 projectors.

Nothing here imports Kedro or MLflow.
"""

from .base import BackboneConfig, CFBackbone
from .registry import BACKBONES, build_backbone

__all__ = ["BACKBONES", "BackboneConfig", "CFBackbone", "build_backbone"]
