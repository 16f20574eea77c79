"""The synthetic world: procedural textures, synthetic shots with exact ground truth, and the tiny backbone's
pretraining.
"""
