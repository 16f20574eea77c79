"""Scoring segmentations: mIoU, boundary F, flicker, and `smite eval` over files."""
