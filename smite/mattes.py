"""Public edge API (issue 13): ``smite.mattes.upsample_mattes`` brings part probabilities from the latent grid to
plate resolution, with edges refined on the plate (see :mod:`smite.video.mattes`)."""

from smite.video.mattes import DEFAULT_EDGES, EDGE_METHODS, refine_mattes, upsample_mattes

__all__ = ["DEFAULT_EDGES", "EDGE_METHODS", "refine_mattes", "upsample_mattes"]
