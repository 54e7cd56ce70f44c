"""Neural style transfer (Gatys, Ecker & Bethge 2016) with a coarse-to-fine schedule.

- :mod:`.vgg`: the VGG19 feature extractor and its weight sources (bundled, cached, a file).
- :mod:`.losses`: content, Gram style and total-variation losses.
- :mod:`.stylize`: the optimisation loop (L-BFGS or Adam, multi-scale, colour preservation).
"""

from transfigure.styletransfer.losses import (
    blend_grams,
    content_loss,
    gram_matrix,
    style_loss,
    total_variation,
)
from transfigure.styletransfer.stylize import (
    StylizeConfig,
    StylizeEvent,
    Stylizer,
    StylizeResult,
    stylize,
)
from transfigure.styletransfer.vgg import (
    LAYER_NAMES,
    VGGFeatures,
    VGGWeights,
    WeightsError,
    build_vgg,
    resolve_weights,
)

__all__ = [
    "LAYER_NAMES",
    "StylizeConfig",
    "StylizeEvent",
    "StylizeResult",
    "Stylizer",
    "VGGFeatures",
    "VGGWeights",
    "WeightsError",
    "blend_grams",
    "build_vgg",
    "content_loss",
    "gram_matrix",
    "resolve_weights",
    "style_loss",
    "stylize",
    "total_variation",
]
