"""Learning a part model from reference frames: augmentation, losses, the two-phase optimiser."""
