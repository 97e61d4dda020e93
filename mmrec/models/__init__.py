"""Fusion model: per-modality branches, (image (+) audio) early, (+) text late -> item embedding."""

from mmrec.models.fusion import MODALITIES, FusionModel

__all__ = ["MODALITIES", "FusionModel"]
