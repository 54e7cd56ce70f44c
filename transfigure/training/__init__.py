"""The one training engine: every trainer is a :class:`Step` run by :func:`train`.

Imports point downwards: model packages (``gan``, ``cyclegan``...) import this package; it
imports only the runtime, files and events.
"""

from transfigure.training.ema import EMA, recalibrate_batch_norm
from transfigure.training.loop import (
    NonFiniteError,
    TrainingError,
    TrainResult,
    epoch_batches,
    export_models,
    load_config,
    train,
)
from transfigure.training.options import (
    TrainOptions,
    config_from_dict,
    config_to_dict,
    default_workers,
    option,
    resumable_fields,
)
from transfigure.training.run import RunFolder, read_run_config
from transfigure.training.step import Step, set_requires_grad

__all__ = [
    "EMA",
    "NonFiniteError",
    "RunFolder",
    "Step",
    "TrainOptions",
    "TrainResult",
    "TrainingError",
    "config_from_dict",
    "config_to_dict",
    "default_workers",
    "epoch_batches",
    "export_models",
    "load_config",
    "option",
    "read_run_config",
    "recalibrate_batch_norm",
    "resumable_fields",
    "set_requires_grad",
    "train",
]
