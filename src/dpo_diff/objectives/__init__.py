"""Objectives that score generated images."""

from .clip import ClipLoss, ClipScorer, spherical_distance

__all__ = ["ClipLoss", "ClipScorer", "spherical_distance"]
