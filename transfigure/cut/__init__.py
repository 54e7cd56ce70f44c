"""CUT and FastCUT: contrastive unpaired translation (Park et al., ECCV 2020).

One generator (the CycleGAN ResNet generator, in the reference's anti-aliased layout), a
PatchGAN discriminator and the PatchNCE loss between patches of the input and its translation.
"""

from transfigure.cut.losses import PatchNCELoss, patch_nce_loss, patchnce
from transfigure.cut.networks import (
    CUT_NCE_LAYERS,
    PatchSampleMLP,
    encoder_features,
    feature_channels,
)

__all__ = [
    "CUT_NCE_LAYERS",
    "PatchNCELoss",
    "PatchSampleMLP",
    "encoder_features",
    "feature_channels",
    "patch_nce_loss",
    "patchnce",
]
