"""pix2pix: paired image-to-image translation (Isola et al., 2017).

A U-Net generator and a conditional PatchGAN from :mod:`transfigure.cyclegan.networks`, trained
on aligned pairs (:class:`transfigure.datasets.aligned.AlignedDataset`) by
:class:`~transfigure.pix2pix.step.Pix2PixStep` on the training engine. Import the step and config
from their modules (``transfigure.pix2pix.step``, ``transfigure.pix2pix.config``).
"""
