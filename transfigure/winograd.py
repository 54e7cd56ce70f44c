"""Winograd F(4×4, 3×3) convolution for 3×3, stride-1 layers in float32 on the CPU.

A 3×3 convolution computes each 4×4 output tile from a 6×6 input tile. Winograd's minimal
filtering algorithm (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
transforms the tile and the kernel into a 6×6 domain where the convolution is an elementwise
product, so over many channels the work becomes 36 matrix products (output channels × input
channels × tiles) instead of 9 shifted ones of the same size: 2.25 fewer multiplications per
4×4 tile than the direct method, 4× fewer per output pixel. The transforms are small fixed
matrices applied with one matrix product each.

On one core of the Xeon (AVX-512) this was measured on, a 256-channel layer at 64² (the ResNet
generator's blocks) takes 30 ms against 46 ms for PyTorch's oneDNN kernel forward, and 89
against 166 ms forward and backward (``benchmarks/winograd.py``). The price is
rounding: the transforms use the points 0, ±1, ±2, which makes results about ten times less
exact than the direct method's (relative error ~1e-5 instead of ~1e-6 in float32), far below
what an image or a gradient step can tell apart.

:class:`Conv3x3` is an :class:`torch.nn.Conv2d` (same parameters and ``state_dict`` keys) that
takes this path where it pays off (:func:`pays_off`) and the ordinary one everywhere else:
other devices, other dtypes (bf16 autocast stays on the direct kernels, whose bf16 rounding
would be amplified by the transforms), small layers. The ResNet generators' residual blocks
use it (translate and training); VGG19 and the CUT generator's stride-1 sampling layers do not
yet: at their sizes (128 channels at 256×192 in style transfer) the per-thread workspace would
hold a few hundred MB, too much for the 1.8× it buys in fp32 until the transforms are done in
tile-row chunks. :func:`enabled` turns it off for a block of code, for example to compare with a
reference bit for bit; ``TRANSFIGURE_WINOGRAD=0`` in the environment turns it off for a whole
process.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv3x3", "enabled", "is_enabled", "pays_off", "winograd_conv3x3"]

# F(4, 3) over the interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray, table 1)
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_AT = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
_TILE = 4  # output tile side
_GROUP = 64  # output channels per matrix product in the forward pass
_PATCH = 6  # input tile side

_matrices: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor, Tensor]] = {}
_state = threading.local()


def _transforms(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(B⊗B, G⊗G, A⊗A) transposed as used: (36, 36) input, (36, 9) kernel, (16, 36) output."""
    key = (dtype, device)
    if key not in _matrices:

        def kron(rows: tuple[tuple[float, ...], ...]) -> Tensor:
            m = torch.tensor(rows, dtype=torch.float64)
            return torch.kron(m, m).to(dtype=dtype, device=device)

        _matrices[key] = (kron(_BT), kron(_G), kron(_AT))
    return _matrices[key]


def _kernel_transform(weight: Tensor, reuse: bool = False) -> Tensor:
    """(K, C, 3, 3) kernels → (36, K, C) in the Winograd domain (in the workspace with
    ``reuse``)."""
    k, c = weight.shape[:2]
    _, gg, _ = _transforms(weight.dtype, weight.device)
    u = _product(torch.mm, gg, weight.reshape(k * c, 9).t(), "kernels", weight, reuse)
    return u.view(_PATCH * _PATCH, k, c)


def _product(
    op: Callable[..., Tensor], a: Tensor, b: Tensor, slot: str, like: Tensor, reuse: bool
) -> Tensor:
    """``op(a, b)`` (``torch.mm`` or ``torch.bmm``), written into the workspace with
    ``reuse``; without, an ordinary differentiable product."""
    if not reuse:
        return op(a, b)
    return op(a, b, out=_workspace(slot, (*a.shape[:-1], b.shape[-1]), like))


def _workspace(slot: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A thread's reusable buffer for one of the transforms' temporaries.

    The temporaries are several MB each, between the sizes of the network's activations;
    allocated afresh on every call they leave holes in the heap that the activations cannot
    reuse, which raised a ResNet generator's peak memory by 50-200 MB (forward and backward
    at 256²). Each slot is kept per thread, dtype and device and grows to the largest size
    asked for: about 20 MB for a generator's inference at 256², 100 MB for its training with
    two images a batch.
    """
    buffers: dict[tuple[str, torch.dtype, torch.device], Tensor]
    buffers = _state.__dict__.setdefault("buffers", {})
    key = (slot, like.dtype, like.device)
    numel = math.prod(shape)
    buf = buffers.get(key)
    if buf is None or buf.numel() < numel:
        buffers.pop(key, None)  # free the old one first
        buf = buffers[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buf[:numel].view(shape)


def _tiles(x: Tensor, reuse: bool = True) -> tuple[Tensor, int, int]:
    """Padded input (N, C, H+2, W+2) → its transformed tiles (36, N·P, C), and the tile grid.

    The tiles are gathered from a channels-last copy, so that every element moved is a run of
    C contiguous floats (twice as fast as gathering 6×6 windows from the NCHW layout). With
    ``reuse`` the result lives in the thread's workspace (use it before the next call);
    without, every step is an ordinary differentiable operation.
    """
    n, c, hp, wp = x.shape
    th, tw = -(-(hp - 2) // _TILE), -(-(wp - 2) // _TILE)
    extra_h, extra_w = th * _TILE + 2 - hp, tw * _TILE + 2 - wp
    if extra_h or extra_w:  # the last tiles reach past the image: zeros, cropped afterwards
        x = F.pad(x, (0, extra_w, 0, extra_h))
        hp, wp = hp + extra_h, wp + extra_w
    bb, _, _ = _transforms(x.dtype, x.device)
    if not reuse:
        patches = x.permute(0, 2, 3, 1).unfold(1, _PATCH, _TILE).unfold(2, _PATCH, _TILE)
        v = bb @ patches.permute(4, 5, 0, 1, 2, 3).reshape(_PATCH * _PATCH, -1)
        return v.view(_PATCH * _PATCH, n * th * tw, c), th, tw
    rows = _workspace("rows", (n, hp, wp, c), x)
    rows.copy_(x.permute(0, 2, 3, 1))  # channels last
    patches = rows.unfold(1, _PATCH, _TILE).unfold(2, _PATCH, _TILE)  # (N, th, tw, C, 6, 6)
    v = _workspace("tiles", (_PATCH * _PATCH, n, th, tw * c), x)
    # gathered and transformed a few tile rows at a time (a quarter of the gathered tiles'
    # memory), the transformed ones written in place
    step = -(-th // 4)
    for b in range(n):
        for i0 in range(0, th, step):
            i1 = min(th, i0 + step)
            d = _workspace("gathered", (_PATCH, _PATCH, i1 - i0, tw, c), x)
            d.copy_(patches[b, i0:i1].permute(3, 4, 0, 1, 2))
            torch.mm(bb, d.view(_PATCH * _PATCH, -1), out=v[:, b, i0:i1].view(_PATCH * _PATCH, -1))
    return v.view(_PATCH * _PATCH, n * th * tw, c), th, tw


class _WinogradConv(torch.autograd.Function):
    # Layouts: tiles V (36, N·P, C), kernels U (36, K, C), products M (36, K, N·P), where P is
    # the number of 4×4 output tiles per image (th·tw)

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, weight: Tensor, bias: Tensor | None
    ) -> Tensor:
        n, _, hp, wp = x.shape
        k = weight.shape[0]
        h, w = hp - 2, wp - 2
        v, th, tw = _tiles(x)
        vt = v.transpose(1, 2)
        _, _, aa = _transforms(x.dtype, x.device)
        out = torch.empty(n, k, th, _TILE, tw, _TILE, dtype=x.dtype, device=x.device)
        # output channels in groups: the transformed kernels and products of one group at a
        # time, not of all (2.25× the weights and the output each)
        for k0 in range(0, k, _GROUP):
            k1 = min(k, k0 + _GROUP)
            u = _kernel_transform(weight[k0:k1], reuse=True)
            m = _product(torch.bmm, u, vt, "products", x, True)  # (36, k1 - k0, N·P)
            y = _product(torch.mm, aa, m.view(_PATCH * _PATCH, -1), "outputs", x, True)
            y = y.view(_TILE, _TILE, k1 - k0, n, th, tw).permute(3, 2, 4, 0, 5, 1)
            if bias is None:
                out[:, k0:k1].copy_(y)
            else:
                torch.add(y, bias[k0:k1].view(1, -1, 1, 1, 1, 1), out=out[:, k0:k1])
        out = out.view(n, k, th * _TILE, tw * _TILE)
        if th * _TILE != h or tw * _TILE != w:
            out = out[:, :, :h, :w].contiguous()
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        n, c, hp, wp = x.shape
        k = weight.shape[0]
        h, w = hp - 2, wp - 2
        th, tw = -(-h // _TILE), -(-w // _TILE)
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_b = grad.sum((0, 2, 3)) if ctx.has_bias and need_b else None
        if th * _TILE != h or tw * _TILE != w:
            grad = F.pad(grad, (0, tw * _TILE - w, 0, th * _TILE - h))
        bb, gg, aa = _transforms(x.dtype, x.device)
        # with create_graph (a gradient penalty) every step must stay differentiable: no
        # workspace, no out= arguments; otherwise the large temporaries live in the workspace
        reuse = not torch.is_grad_enabled()
        # the output transform's transpose: (N, K, th·4, tw·4) → (36, K, N·P)
        gy = grad.reshape(n, k, th, _TILE, tw, _TILE).permute(3, 5, 1, 0, 2, 4)
        if reuse:
            gy = _workspace("grad tiles", gy.shape, x).copy_(gy)
        gm = _product(torch.mm, aa.t(), gy.reshape(_TILE * _TILE, -1), "products", x, reuse)
        gm = gm.view(_PATCH * _PATCH, k, -1)
        grad_x = grad_w = None
        if need_w:
            v, _, _ = _tiles(x, reuse=reuse)
            gu = _product(torch.bmm, gm, v, "kernel grads", x, reuse)  # (36, K, C)
            grad_w = (gg.t() @ gu.view(_PATCH * _PATCH, -1)).t().reshape(k, c, 3, 3)
        if need_x:
            u = _kernel_transform(weight, reuse)
            gv = _product(torch.bmm, u.transpose(1, 2), gm, "grad tiles 2", x, reuse)
            gd = _product(torch.mm, bb.t(), gv.view(_PATCH * _PATCH, -1), "tiles", x, reuse)
            gd = gd.view(_PATCH, _PATCH, c, n, th, tw).permute(3, 2, 0, 1, 4, 5)
            if reuse:  # "products" (gm) is no longer needed
                gd = _workspace("products", gd.shape, x).copy_(gd)
            cols = gd.reshape(n, c * _PATCH * _PATCH, th * tw)
            size = (th * _TILE + 2, tw * _TILE + 2)
            grad_x = F.fold(cols, size, kernel_size=_PATCH, stride=_TILE)
            if size != (hp, wp):
                grad_x = grad_x[:, :, :hp, :wp]
        return grad_x, grad_w, grad_b


def winograd_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv2d(x, weight, bias)`` for (K, C, 3, 3) kernels, stride 1 and no padding (pad
    ``x`` first), computed with Winograd F(4×4, 3×3); differentiable in all three."""
    if x.dim() != 4 or weight.shape[2:] != (3, 3) or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"expected input (N, C, H, W) and kernels (K, C, 3, 3), got {tuple(x.shape)} "
            f"and {tuple(weight.shape)}"
        )
    if x.shape[2] < 3 or x.shape[3] < 3:
        raise ValueError(f"input {tuple(x.shape)} is smaller than the 3×3 kernel")
    return _WinogradConv.apply(x, weight, bias)


def is_enabled() -> bool:
    """Whether :class:`Conv3x3` may take the Winograd path in this thread: on unless switched
    off by :func:`enabled` or, for a whole process, ``TRANSFIGURE_WINOGRAD=0``."""
    on = getattr(_state, "enabled", None)
    if on is None:
        return os.environ.get("TRANSFIGURE_WINOGRAD", "1") != "0"
    return on


@contextlib.contextmanager
def enabled(on: bool) -> Iterator[None]:
    """Turn the Winograd path of :class:`Conv3x3` on or off inside a ``with`` block."""
    before = getattr(_state, "enabled", None)
    _state.enabled = on
    try:
        yield
    finally:
        _state.enabled = before


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def pays_off(x: Tensor, out_channels: int, padding: tuple[int, int] = (0, 0)) -> bool:
    """Whether the Winograd path is faster than PyTorch's kernel for this input.

    Float32 on the CPU, not under autocast, and either at least 256 channels in and out and
    1,024 output pixels over the batch, or at least 128 channels and 4,096 pixels
    (``benchmarks/winograd.py``, one core of a Xeon with AVX-512: forward and backward
    1.1-2.2× faster there; with fewer channels or pixels PyTorch's kernel is as fast or
    faster).
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4 or _cpu_autocast():
        return False
    pixels = x.shape[0] * (x.shape[2] + 2 * padding[0] - 2) * (x.shape[3] + 2 * padding[1] - 2)
    channels = min(x.shape[1], out_channels)
    return (channels >= 256 and pixels >= 32 * 32) or (channels >= 128 and pixels >= 64 * 64)


class Conv3x3(nn.Conv2d):
    """A 3×3, stride-1 :class:`torch.nn.Conv2d` that uses :func:`winograd_conv3x3` where it
    pays off.

    Same parameters, ``state_dict`` keys and results (to float rounding) as the
    :class:`~torch.nn.Conv2d` it replaces; ``padding`` and ``padding_mode`` work as there (the
    Winograd path pads first). The kernels are transformed on every call (about 2 ms for 256
    channels, 5 % of a ResNet generator's pass): keeping them would cost 2.25× the weights'
    memory. Inputs that are not 4-D take PyTorch's path.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: object) -> None:
        for name, value in (("kernel_size", 3), ("stride", 1), ("dilation", 1), ("groups", 1)):
            given = kwargs.pop(name, value)
            if given not in (value, (value, value)):
                raise ValueError(f"Conv3x3 needs {name}={value}, got {given}")
        super().__init__(in_channels, out_channels, 3, **kwargs)  # type: ignore[arg-type]

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(self.padding, str) or not is_enabled():
            return super().forward(input)
        ph, pw = self.padding
        if not pays_off(input, self.out_channels, (ph, pw)):
            return super().forward(input)
        if ph or pw:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, (pw, pw, ph, ph), mode=mode)
        return _WinogradConv.apply(input, self.weight, self.bias)
