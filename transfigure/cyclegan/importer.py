"""Import generators from elsewhere by structure: layer order and shapes, not attribute names.

Many published CycleGAN / pix2pix / CUT generators come from re-implementations of the reference
networks: the same layers in the same order, but other attribute names (``res_blocks.3.conv2``
for ``model.13.conv_block.5``), InstanceNorm with learned scale and shift, convolutions without
bias, or the weights wrapped in a checkpoint dict with other entries (epoch, optimiser...).

:func:`convert_generator`

1. finds the generator's state dict inside a wrapper (``state_dict``, ``netG``, ``G_A``, …) and
   strips a DataParallel ``module.`` prefix;
2. infers the architecture from the tensors alone: ResNet (first convolution 7×7) or U-Net
   (first convolution 4×4), width, channels, number of residual blocks or levels, the norm
   (running statistics: batch; scale and shift only: ``instance_affine``; neither: instance),
   the CUT reference's anti-aliased layout (fixed ``filt`` buffers) and the upsampling kind;
3. walks the file's layers (tensors grouped by module, in file order) beside the layers of the
   inferred transfigure network, placing each on the next one whose tensors have the same
   shapes; it refuses with a message naming the first tensor it cannot place;
4. loads the result with ``strict=True``.

Exact equivalences it applies, each stated in :attr:`Imported.notes`: a missing bias of a
convolution that a norm layer follows is zero (the norm cancels it), missing BatchNorm
``num_batches_tracked`` counters are zero, and the running statistics that PyTorch < 0.4 saved
for InstanceNorm are dropped.
What weights cannot show (dropout layers have none) is assumed and said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from transfigure.checkpoint import ModelFileError
from transfigure.cyclegan.networks import GeneratorConfig, build_generator

__all__ = ["Imported", "convert_generator", "find_state_dict"]

# Where re-implementations keep the generator's weights in a checkpoint dict, most likely first.
_WRAPPER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "netG",
    "G",
    "generator",
    "gen",
    "ema",
    "netG_A",
    "G_A",
    "G_AB",
    "gen_a2b",
)
_STALE = ("running_mean", "running_var", "num_batches_tracked")


@dataclass
class Imported:
    """A generator imported from a foreign state dict.

    Attributes:
        config: the inferred architecture.
        state: the weights under transfigure's names; ``build_generator(config)`` loads them
            strictly.
        net: that network, loaded, in eval mode.
        notes: what was inferred or converted, one sentence each.
    """

    config: GeneratorConfig
    state: dict[str, Tensor]
    net: nn.Module
    notes: list[str] = field(default_factory=list)


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())
    )


def find_state_dict(obj: Any, source: str = "state dict") -> tuple[dict[str, Tensor], list[str]]:
    """The generator's state dict inside ``obj`` (itself, or one entry of a wrapper dict).

    Returns:
        ``(state, notes)`` with a DataParallel ``module.`` prefix removed.

    Raises:
        ModelFileError: no entry holds a state dict of tensors, or several do and none is a
            known generator name.
    """
    notes: list[str] = []
    if not isinstance(obj, Mapping) or not obj:
        raise ModelFileError(f"{source}: not a state dict (found {type(obj).__name__})")
    state: Any = obj
    for _depth in range(3):
        if _is_tensor_dict(state):
            break
        candidates = {str(k): v for k, v in state.items() if _is_tensor_dict(v)}
        nested = {str(k): v for k, v in state.items() if isinstance(v, Mapping) and v}
        chosen = next((k for k in _WRAPPER_KEYS if k in candidates), None)
        if chosen is None and len(candidates) == 1:
            chosen = next(iter(candidates))
        if chosen is None and not candidates:
            chosen = next((k for k in _WRAPPER_KEYS if k in nested), None)
            if chosen is None and len(nested) == 1:
                chosen = next(iter(nested))
        if chosen is None:
            found = ", ".join(list(candidates or state)[:6])
            what = "several state dicts" if len(candidates) > 1 else "no state dict of tensors"
            raise ModelFileError(
                f"{source}: not a plain state dict of tensors ({what} among its entries: "
                f"{found}); export the generator's state_dict"
            )
        others = [str(k) for k in state if str(k) != chosen]
        ignored = f" (ignored: {', '.join(others[:5])}{' …' if len(others) > 5 else ''})"
        notes.append(f"weights taken from the entry {chosen!r}{ignored if others else ''}")
        state = state[chosen]
    if not _is_tensor_dict(state):
        raise ModelFileError(f"{source}: not a plain state dict of tensors")
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
        notes.append("DataParallel prefix 'module.' removed")
    return state, notes


# --------------------------------------------------------------------------------------------
# layers: tensors grouped by module, in file order


def _groups(state: Mapping[str, Tensor]) -> list[tuple[str, dict[str, Tensor]]]:
    groups: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = value
    return list(groups.items())


def _key(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _is_filter(leaves: Mapping[str, Tensor]) -> bool:
    return set(leaves) == {"filt"}


def _is_conv(leaves: Mapping[str, Tensor]) -> bool:
    w = leaves.get("weight")
    return w is not None and w.ndim == 4 and "filt" not in leaves


def _is_norm(leaves: Mapping[str, Tensor]) -> bool:
    w = leaves.get("weight")
    return (w is not None and w.ndim == 1) or "running_mean" in leaves


def _infer(
    groups: list[tuple[str, dict[str, Tensor]]], source: str
) -> tuple[GeneratorConfig, list[str]]:
    """The generator architecture that these layers describe (before placing them)."""
    notes: list[str] = []
    convs = [(name, leaves) for name, leaves in groups if _is_conv(leaves)]
    if not convs:
        name, leaves = groups[0]
        leaf = next(iter(leaves))
        raise ModelFileError(
            f"{source}: cannot place {_key(name, leaf)} {_shape(leaves[leaf])}: no convolution "
            "weights at all, not a generator"
        )
    first_name, first = convs[0]
    first_w = first["weight"]
    kernel = _shape(first_w)[2:]
    norm_groups = [leaves for _, leaves in groups if _is_norm(leaves) and not _is_conv(leaves)]
    affine = [g for g in norm_groups if "weight" in g]
    if any("running_mean" in g for g in affine):
        norm = "batch"
    elif affine:
        norm = "instance_affine"
        notes.append("norm: instance norm with learned scale and shift (instance_affine)")
    else:
        norm = "instance"
        notes.append("norm: no norm parameters, so parameter-free instance norm (the reference's)")
    if kernel == (7, 7):
        ngf, input_nc = int(first_w.shape[0]), int(first_w.shape[1])
        last_w = convs[-1][1]["weight"]
        output_nc = int(last_w.shape[0])
        square = [n for n, g in convs if _shape(g["weight"]) == (4 * ngf, 4 * ngf, 3, 3)]
        # an odd count is a damaged block: placing the layers names the tensor
        n_blocks = (len(square) + 1) // 2
        if n_blocks not in (6, 9):
            raise ModelFileError(
                f"{source}: a ResNet generator with {n_blocks} residual blocks; transfigure builds "
                "resnet_6blocks and resnet_9blocks only"
            )
        antialias = any(_is_filter(leaves) for _, leaves in groups)
        upsample = "transpose"
        if not antialias:
            after = convs[2 + 2 * n_blocks] if len(convs) > 2 + 2 * n_blocks else None
            if after is not None and _shape(after[1]["weight"])[:2] == (2 * ngf, 4 * ngf):
                upsample = "resize_conv"
        if antialias:
            notes.append("anti-aliased down/up-sampling (the CUT reference's layout)")
        notes.append(
            "dropout: not visible in the weights (dropout layers have none); assumed none, "
            "as in the reference CycleGAN and CUT generators"
        )
        config = GeneratorConfig(
            netG=f"resnet_{n_blocks}blocks",
            input_nc=input_nc,
            output_nc=output_nc,
            ngf=ngf,
            norm=norm,
            upsample=upsample,
            antialias=antialias,
        )
    elif kernel == (4, 4):
        ngf, input_nc = int(first_w.shape[0]), int(first_w.shape[1])
        num_downs = len(convs) // 2
        if num_downs not in (7, 8):
            raise ModelFileError(
                f"{source}: cannot place {_key(first_name, 'weight')} {_shape(first_w)}: a 4×4 "
                f"first convolution as in a U-Net (or a PatchGAN discriminator), but "
                f"{len(convs)} convolutions where unet_128 has 14 and unet_256 16; not a "
                "generator transfigure builds"
            )
        output_nc = int(convs[-1][1]["weight"].shape[1])  # ConvTranspose2d: (in, out, k, k)
        notes.append(
            "dropout: not visible in the weights; assumed the pix2pix reference's (dropout in "
            "the inner levels, kept on at test time)"
        )
        config = GeneratorConfig(
            netG="unet_256" if num_downs == 8 else "unet_128",
            input_nc=input_nc,
            output_nc=output_nc,
            ngf=ngf,
            norm=norm,
            use_dropout=True,
            dropout_at_test=True,
        )
    else:
        raise ModelFileError(
            f"{source}: cannot place {_key(first_name, 'weight')} {_shape(first_w)}: a ResNet "
            "generator starts with a 7×7 convolution and a U-Net with a 4×4 one"
        )
    return config, notes


def _normalised_convs(net: nn.Module) -> set[str]:
    """Convolutions directly followed by a norm layer, which cancels any constant bias."""
    leaves = [(n, m) for n, m in net.named_modules() if not list(m.children())]
    return {
        name
        for (name, m), (_, nxt) in zip(leaves, leaves[1:], strict=False)
        if isinstance(m, nn.modules.conv._ConvNd)
        and isinstance(nxt, nn.InstanceNorm2d | nn.BatchNorm2d)
    }


def _place(
    source_groups: list[tuple[str, dict[str, Tensor]]],
    net: nn.Module,
    config: GeneratorConfig,
    source: str,
) -> tuple[dict[str, Tensor], list[str]]:
    """Put the file's layers, in order, onto the target network's layers."""
    target = net.state_dict()
    normalised = _normalised_convs(net)
    placed: dict[str, Tensor] = {}
    zero_bias: list[str] = []
    zero_counters = 0
    renamed = 0
    what = f"{config.netG} generator (ngf={config.ngf}, {config.norm} norm)"
    queue = list(source_groups)
    for t_name, t_leaves in _groups(target):
        if not queue:
            leaf = next(iter(t_leaves))
            raise ModelFileError(
                f"{source}: the file ends before the {what} is complete: nothing for "
                f"{_key(t_name, leaf)} {_shape(t_leaves[leaf])}"
            )
        s_name, s_leaves = queue.pop(0)
        for leaf, value in s_leaves.items():
            expected = t_leaves.get(leaf)
            if expected is None or _shape(expected) != _shape(value):
                wanted = ", ".join(f"{_key(t_name, k)} {_shape(v)}" for k, v in t_leaves.items())
                raise ModelFileError(
                    f"{source}: cannot place {_key(s_name, leaf)} {_shape(value)}: the next "
                    f"layer of a {what} is {wanted}"
                )
        for leaf, expected in t_leaves.items():
            value = s_leaves.get(leaf)
            if value is None:
                if leaf == "bias" and t_name in normalised and "weight" in s_leaves:
                    # the norm after it subtracts any per-channel constant: exactly equivalent
                    value = torch.zeros_like(expected)
                    zero_bias.append(_key(s_name, "weight"))
                elif leaf == "num_batches_tracked":
                    value = torch.zeros_like(expected)
                    zero_counters += 1
                else:
                    raise ModelFileError(
                        f"{source}: {_key(s_name, next(iter(s_leaves)))} has no {leaf!r}, which "
                        f"{_key(t_name, leaf)} {_shape(expected)} of a {what} needs"
                    )
            placed[_key(t_name, leaf)] = value.detach().to("cpu", expected.dtype).contiguous()
        renamed += s_name != t_name
    if queue:
        s_name, s_leaves = queue[0]
        leaf = next(iter(s_leaves))
        raise ModelFileError(
            f"{source}: cannot place {_key(s_name, leaf)} {_shape(s_leaves[leaf])}: the {what} "
            "is complete without it"
        )
    notes = []
    if renamed:
        notes.append(f"{renamed} layers placed by order and shape under other names")
    if zero_bias:
        notes.append(
            f"{len(zero_bias)} convolutions without bias (first: {zero_bias[0]}): zero bias"
        )
    if zero_counters:
        notes.append(f"{zero_counters} BatchNorm num_batches_tracked counters missing: set to 0")
    return placed, notes


def convert_generator(
    obj: Any,
    *,
    source: str = "state dict",
    use_dropout: bool | None = None,
    dropout_at_test: bool | None = None,
) -> Imported:
    """Map a foreign generator state dict onto a transfigure generator, strictly.

    Args:
        obj: what ``torch.load(weights_only=True)`` returned (a state dict or a wrapper).
        source: a name for messages (the file).
        use_dropout: override the assumed dropout (weights cannot show it).
        dropout_at_test: override whether dropout stays on at test time.

    Returns:
        :class:`Imported`.

    Raises:
        ModelFileError: no state dict, an architecture transfigure does not build, or a tensor
            that cannot be placed (named in the message).
    """
    state, notes = find_state_dict(obj, source)
    groups = _groups(state)
    # InstanceNorm running statistics saved by PyTorch < 0.4: a group of statistics only,
    # beside convolutions with bias (the reference's instance-norm layout).
    conv_bias = any(_is_conv(g) and "bias" in g for _, g in groups)
    stale = [
        (n, g) for n, g in groups if set(g) <= set(_STALE) and "running_mean" in g and conv_bias
    ]
    if stale:
        notes.append(f"{len(stale)} stale InstanceNorm running statistics dropped")
        groups = [(n, g) for n, g in groups if (n, g) not in stale]
    groups = [(n, g) for n, g in groups if g]
    config, inferred = _infer(groups, source)
    if use_dropout is not None:
        config = replace(config, use_dropout=use_dropout)
    if dropout_at_test is not None:
        config = replace(config, dropout_at_test=dropout_at_test and config.use_dropout)
    net = build_generator(config)
    placed, placing = _place(groups, net, config, source)
    net.load_state_dict(placed, strict=True)
    return Imported(config, placed, net.eval(), notes + inferred + placing)
