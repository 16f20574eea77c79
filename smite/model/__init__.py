"""The diffusion backbone and what learning and segmentation share: loading, attention capture, attention-map
maths, the inflated (cross-frame) UNet, part-prompt conditioning, plate framing, the part-model file and the
reference pass.
"""
