"""Datasets: image folders (one domain, unpaired A/B, aligned pairs, labelled classes),
albumentations pipelines, and procedurally generated data for tests and the offline demo.

``transfigure.datasets.catalog`` (the official CycleGAN datasets) is not imported here, so
importing the datasets stays light; import it where it is needed.
"""

from transfigure.datasets.aligned import AlignedDataset
from transfigure.datasets.folders import (
    ImageFolderDataset,
    LabelledFolderDataset,
    UnpairedDataset,
)
from transfigure.datasets.synthetic import (
    SEASONS,
    SHAPE_CLASSES,
    seasons,
    shapes,
    write_seasons,
    write_shapes,
)
from transfigure.datasets.transforms import (
    PREPROCESS_MODES,
    Pipeline,
    array_to_tensor,
    denormalize,
    eval_transform,
    train_transform,
)

__all__ = [
    "PREPROCESS_MODES",
    "AlignedDataset",
    "SEASONS",
    "SHAPE_CLASSES",
    "ImageFolderDataset",
    "LabelledFolderDataset",
    "Pipeline",
    "UnpairedDataset",
    "array_to_tensor",
    "denormalize",
    "eval_transform",
    "seasons",
    "shapes",
    "train_transform",
    "write_seasons",
    "write_shapes",
]
