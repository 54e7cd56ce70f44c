"""CycleGAN training (Zhu et al., 2017): two generators, two PatchGAN discriminators.

``G_A: A → B`` and ``G_B: B → A``; ``D_A`` tells real B from ``G_A``'s fakes and ``D_B`` real A
from ``G_B``'s (the reference's naming). Each iteration:

1. translate both ways and back: ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, and vice versa;
2. update both generators on adversarial + λ·cycle + λ·λ_idt·identity losses, D frozen;
3. update both discriminators on real images against fakes drawn from a 50-image history.

A run folder holds ``config.json``, ``checkpoints/latest.pt`` (every epoch and on Ctrl-C, at
a step boundary) plus periodic ``checkpoints/epoch_XXX.pt``, ``metrics.jsonl``,
``samples/epoch_XXX.png`` (rows: real A, fake B, rec A | real B, fake A, rec B on fixed
images), ``losses.png`` and the exported generators ``generator_a2b.safetensors`` /
``generator_b2a.safetensors``.

Resuming (``resume=True``) restores the networks, optimisers, AMP scaler, image pools, the
learning-rate schedule's state and every random state, and continues at the exact epoch and
step. The learning rate is a function of the epoch and the totals (see
:mod:`~transfigure.cyclegan.schedule`), so nothing needs recomputing by hand; a run is *extended*
by resuming with larger ``n_epochs`` / ``n_epochs_decay``, and the remaining epochs then follow
the schedule of a run started with those totals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from transfigure import runtime
from transfigure.checkpoint import (
    ModelFileError,
    load_training_state,
    save_model,
    save_training_state,
)
from transfigure.cyclegan.losses import (
    GAN_MODES,
    cycle_loss,
    discriminator_loss,
    generator_adversarial_loss,
    identity_loss,
    patch_gradient_penalty,
)
from transfigure.cyclegan.networks import (
    DISCRIMINATOR_NETS,
    GENERATOR_NETS,
    INIT_TYPES,
    NORMS,
    UPSAMPLE_MODES,
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from transfigure.cyclegan.pool import ImagePool
from transfigure.cyclegan.schedule import POLICIES, LRSchedule
from transfigure.datasets.folders import UnpairedDataset
from transfigure.datasets.transforms import PREPROCESS_MODES, eval_transform, train_transform
from transfigure.fileio import append_jsonl, atomic_path, write_json
from transfigure.images import ImageError, list_images, load_array, save_grid
from transfigure.plots import plot_metrics
from transfigure.progress import Event
from transfigure.report import write_run_report

__all__ = [
    "LOSS_TERMS",
    "TrainConfig",
    "TrainResult",
    "load_run_config",
    "train",
]

# The loss terms logged to metrics.jsonl (the reference's names); gp_* only in wgangp mode.
LOSS_TERMS = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")

_CHECKPOINT_FORMAT = 1

# Settings that may differ when a run is resumed; everything else must match the run's config.
RESUMABLE_CHANGES = frozenset(
    {"n_epochs", "n_epochs_decay", "workers", "log_every", "checkpoint_every"}
)


def _opt(help: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"help": help, **extra}}


@dataclass
class TrainConfig:
    """Everything a CycleGAN run is made of: the only home of the training defaults.

    The defaults are the reference's CycleGAN settings (``--model cycle_gan``, ``--no_dropout``
    as in its training scripts and pretrained models).
    """

    # data
    data_root: str | None = field(
        default=None, **_opt("folder with trainA/ and trainB/ (and optionally testA/, testB/)")
    )
    domain_a: str | None = field(default=None, **_opt("domain A folder (instead of DATA_ROOT)"))
    domain_b: str | None = field(default=None, **_opt("domain B folder (instead of DATA_ROOT)"))
    preprocess: str = field(
        default="resize_and_crop", **_opt("image preprocessing", choices=PREPROCESS_MODES)
    )
    load_size: int = field(default=286, **_opt("resize images to this size first"))
    crop_size: int = field(default=256, **_opt("then crop to this size"))
    flip: bool = field(default=True, **_opt("random horizontal flips"))
    input_nc: int = field(default=3, **_opt("channels of domain A images (1 = grayscale, 3)"))
    output_nc: int = field(default=3, **_opt("channels of domain B images (1 = grayscale, 3)"))
    serial_batches: bool = field(
        default=False, **_opt("take images in order and pair A and B in order (no shuffling)")
    )
    max_dataset_size: int | None = field(
        default=None, **_opt("use at most this many images per domain", type=int)
    )
    batch_size: int = field(default=1, **_opt("images per batch (per process)"))
    workers: int = field(default=4, **_opt("data-loading worker processes"))
    # networks
    netG: str = field(
        default=GeneratorConfig.netG, **_opt("generator architecture", choices=GENERATOR_NETS)
    )
    netD: str = field(
        default=DiscriminatorConfig.netD,
        **_opt(
            "discriminator: basic (70x70 PatchGAN), n_layers, pixel", choices=DISCRIMINATOR_NETS
        ),
    )
    ngf: int = field(default=GeneratorConfig.ngf, **_opt("generator width (filters)"))
    ndf: int = field(default=DiscriminatorConfig.ndf, **_opt("discriminator width (filters)"))
    n_layers_d: int = field(
        default=DiscriminatorConfig.n_layers, **_opt("discriminator layers (netD n_layers)")
    )
    norm: str = field(default=GeneratorConfig.norm, **_opt("normalisation", choices=NORMS))
    use_dropout: bool = field(
        default=GeneratorConfig.use_dropout, **_opt("dropout in the generators")
    )
    upsample: str = field(
        default=GeneratorConfig.upsample,
        **_opt(
            "generator upsampling: transposed convolutions (reference) or resize + convolution "
            "(no checkerboard artefacts)",
            choices=UPSAMPLE_MODES,
        ),
    )
    init_type: str = field(
        default=GeneratorConfig.init_type, **_opt("weight initialisation", choices=INIT_TYPES)
    )
    init_gain: float = field(default=GeneratorConfig.init_gain, **_opt("initialisation scale"))
    # objective
    gan_mode: str = field(
        default="lsgan", **_opt("adversarial loss: lsgan, vanilla (BCE), wgangp", choices=GAN_MODES)
    )
    lambda_a: float = field(default=10.0, **_opt("weight of the A → B → A cycle loss"))
    lambda_b: float = field(default=10.0, **_opt("weight of the B → A → B cycle loss"))
    lambda_identity: float = field(
        default=0.5, **_opt("identity loss weight, relative to the cycle weights (0 disables)")
    )
    lambda_gp: float = field(default=10.0, **_opt("gradient penalty weight (wgangp)"))
    pool_size: int = field(default=50, **_opt("generated images kept for the discriminators"))
    # optimisation
    lr: float = field(default=2e-4, **_opt("Adam learning rate"))
    beta1: float = field(default=0.5, **_opt("Adam beta1"))
    beta2: float = field(default=0.999, **_opt("Adam beta2"))
    n_epochs: int = field(default=100, **_opt("epochs at the initial learning rate"))
    n_epochs_decay: int = field(default=100, **_opt("epochs of decay to zero after that"))
    lr_policy: str = field(default="linear", **_opt("learning-rate policy", choices=POLICIES))
    lr_decay_iters: int = field(default=50, **_opt("epochs per step (lr_policy step)"))
    # run
    seed: int = field(default=0, **_opt("seed of initialisation, data order and augmentation"))
    channels_last: bool = field(default=True, **_opt("channels-last memory format on CUDA"))
    log_every: int = field(default=100, **_opt("iterations per line of metrics.jsonl"))
    checkpoint_every: int = field(default=10, **_opt("epochs per kept checkpoint (0: none)"))
    n_samples: int = field(default=4, **_opt("fixed images per direction in the sample strips"))

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        choices = {
            "preprocess": PREPROCESS_MODES,
            "netG": GENERATOR_NETS,
            "netD": DISCRIMINATOR_NETS,
            "norm": NORMS,
            "upsample": UPSAMPLE_MODES,
            "init_type": INIT_TYPES,
            "gan_mode": GAN_MODES,
            "lr_policy": POLICIES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if (self.data_root is None) == (self.domain_a is None and self.domain_b is None):
            raise ValueError("give either data_root or both domain_a and domain_b")
        if self.data_root is None and (self.domain_a is None or self.domain_b is None):
            raise ValueError("domain_a and domain_b must be given together")
        for name in ("input_nc", "output_nc"):
            if getattr(self, name) not in (1, 3):
                raise ValueError(f"{name} must be 1 or 3, got {getattr(self, name)}")
        positive = ("load_size", "crop_size", "batch_size", "ngf", "ndf", "n_layers_d", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("workers", "pool_size", "n_epochs", "n_epochs_decay", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.total_epochs < 1:
            raise ValueError("n_epochs + n_epochs_decay must be at least 1")
        if self.max_dataset_size is not None and self.max_dataset_size < 1:
            raise ValueError(f"max_dataset_size must be >= 1, got {self.max_dataset_size}")
        if self.lambda_identity > 0 and self.input_nc != self.output_nc:
            raise ValueError(
                "the identity loss needs input_nc == output_nc "
                f"(got {self.input_nc} and {self.output_nc}); set lambda_identity to 0"
            )
        if self.gan_mode == "wgangp" and self.norm == "batch":
            raise ValueError(
                "wgangp needs a discriminator whose samples do not interact: "
                "use norm instance or none, not batch"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def generator_config(self, direction: str) -> GeneratorConfig:
        """Architecture of ``G_A`` (``"a2b"``) or ``G_B`` (``"b2a"``)."""
        nc_in, nc_out = (self.input_nc, self.output_nc)
        if direction == "b2a":
            nc_in, nc_out = nc_out, nc_in
        elif direction != "a2b":
            raise ValueError(f"direction must be a2b or b2a, got {direction!r}")
        return GeneratorConfig(
            netG=self.netG,
            input_nc=nc_in,
            output_nc=nc_out,
            ngf=self.ngf,
            norm=self.norm,
            use_dropout=self.use_dropout,
            upsample=self.upsample,
            init_type=self.init_type,
            init_gain=self.init_gain,
        )

    def discriminator_config(self, domain: str) -> DiscriminatorConfig:
        """Architecture of the discriminator judging domain ``"A"`` (D_B) or ``"B"`` (D_A)."""
        nc = {"A": self.input_nc, "B": self.output_nc}[domain]
        return DiscriminatorConfig(
            netD=self.netD,
            input_nc=nc,
            ndf=self.ndf,
            n_layers=self.n_layers_d,
            norm=self.norm,
            init_type=self.init_type,
            init_gain=self.init_gain,
        )

    def domain_dirs(self) -> tuple[Path, Path]:
        if self.data_root is not None:
            return Path(self.data_root) / "trainA", Path(self.data_root) / "trainB"
        assert self.domain_a is not None and self.domain_b is not None
        return Path(self.domain_a), Path(self.domain_b)


@dataclass
class TrainResult:
    """What a finished (or interrupted) run left behind."""

    run_dir: Path
    generator_a2b: Path | None
    generator_b2a: Path | None
    checkpoint: Path | None
    epochs_done: int
    global_step: int
    samples: list[Path] = field(default_factory=list)


@dataclass
class _Nets:
    G_A: nn.Module
    G_B: nn.Module
    D_A: nn.Module
    D_B: nn.Module

    def names(self) -> tuple[str, ...]:
        return ("G_A", "G_B", "D_A", "D_B")

    def unwrapped(self, name: str) -> nn.Module:
        net = getattr(self, name)
        return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


# ------------------------------------------------------------------------------------------
# run-folder helpers


def load_run_config(
    run_dir: str | Path,
    *,
    n_epochs: int | None = None,
    n_epochs_decay: int | None = None,
    **changes: Any,
) -> TrainConfig:
    """The config of an existing run, with the changes a resume may make.

    Args:
        run_dir: a run folder written by :func:`train`.
        n_epochs, n_epochs_decay: new totals to extend the run (the schedule is recomputed as
            if the run had been started with them).
        **changes: other fields in :data:`RESUMABLE_CHANGES`.

    Raises:
        FileNotFoundError: no ``config.json`` in ``run_dir``.
        ValueError: a change to a setting that cannot change mid-run.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a CycleGAN run folder (no config.json)")
    stored = json.loads(path.read_text())
    if stored.get("kind") != "cyclegan":
        raise ValueError(f"{run_dir}: not a CycleGAN run (kind {stored.get('kind')!r})")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in stored["train"].items() if k in known}
    cfg = TrainConfig(**values)
    bad = sorted(set(changes) - RESUMABLE_CHANGES)
    if bad:
        raise ValueError(
            f"cannot change {', '.join(bad)} when resuming (only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))})"
        )
    if n_epochs is not None:
        changes["n_epochs"] = n_epochs
    if n_epochs_decay is not None:
        changes["n_epochs_decay"] = n_epochs_decay
    return dataclasses.replace(cfg, **changes)


CYCLEGAN_PANELS = (
    ("adversarial", (("D_A", "D_A"), ("G_A", "G_A"), ("D_B", "D_B"), ("G_B", "G_B"))),
    (
        "cycle / identity",
        (("cycle_A", "cycle_A"), ("cycle_B", "cycle_B"), ("idt_A", "idt_A"), ("idt_B", "idt_B")),
    ),
    ("gradient penalty", (("gp_A", "gp_A"), ("gp_B", "gp_B"))),
    ("learning rate", (("lr", "lr"),)),
)


def _truncate_metrics(path: Path, global_step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (they will be logged again)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= global_step]
    if len(kept) != len(lines):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in kept))


def _fixed_images(cfg: TrainConfig, domain: str, n: int) -> Tensor | None:
    """``n`` fixed images of a domain for the sample strips: test images when there are some
    (``DATA_ROOT/testA``), else the first training images; resized to ``crop_size``."""
    if n < 1:
        return None
    train_dir = cfg.domain_dirs()[0 if domain == "A" else 1]
    folder = train_dir
    if cfg.data_root is not None and (Path(cfg.data_root) / f"test{domain}").is_dir():
        folder = Path(cfg.data_root) / f"test{domain}"
    grayscale = (cfg.input_nc if domain == "A" else cfg.output_nc) == 1
    transform = eval_transform(size=cfg.crop_size, grayscale=grayscale)
    images = []
    for path in list_images([folder], recursive=True):
        try:
            images.append(transform(load_array(path)))
        except (ImageError, ValueError):  # skipped here; the dataset reports unreadable files
            continue
        if len(images) == n:
            break
    return torch.stack(images) if images else None


def _to_rgb01(t: Tensor) -> Tensor:
    t = ((t.float() + 1.0) * 0.5).clamp(0.0, 1.0)
    return t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t


@torch.no_grad()
def _sample_strip(
    nets: _Nets, fixed_a: Tensor | None, fixed_b: Tensor | None, device: torch.device
) -> Tensor | None:
    """Rows of real A, fake B, rec A, real B, fake A, rec B as one (N·6, 3, H, W) batch."""
    G_A, G_B = nets.unwrapped("G_A"), nets.unwrapped("G_B")
    was_training = G_A.training
    G_A.eval()
    G_B.eval()
    try:
        n = (
            max(len(x) for x in (fixed_a, fixed_b) if x is not None)
            if (fixed_a is not None or fixed_b is not None)
            else 0
        )
        if n == 0:
            return None
        cells: list[Tensor] = []
        for i in range(n):
            for real, g, f in ((fixed_a, G_A, G_B), (fixed_b, G_B, G_A)):
                if real is None or i >= len(real):
                    continue
                x = real[i : i + 1].to(device)
                fake = g(x)
                rec = f(fake)
                cells += [_to_rgb01(x), _to_rgb01(fake), _to_rgb01(rec)]
        return torch.cat([c.cpu() for c in cells])
    finally:
        G_A.train(was_training)
        G_B.train(was_training)


# ------------------------------------------------------------------------------------------
# data


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (an epoch-seeded permutation, sharded over processes) that can skip
    the batches already done when a run resumes mid-epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


def _build_data(
    cfg: TrainConfig, dist: runtime.DistInfo, device: torch.device
) -> tuple[UnpairedDataset, _ResumableSampler, DataLoader]:
    dir_a, dir_b = cfg.domain_dirs()
    for name, folder in (("domain A", dir_a), ("domain B", dir_b)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} folder not found: {folder}")
    sources: list[Any] = [dir_a, dir_b]
    if cfg.max_dataset_size is not None:
        sources = [list_images([d], recursive=True)[: cfg.max_dataset_size] for d in sources]
        for name, paths, folder in zip(("A", "B"), sources, (dir_a, dir_b), strict=True):
            if not paths:
                raise ValueError(f"no images found in domain {name} folder {folder}")

    def pipeline(nc: int) -> Any:
        return train_transform(
            load_size=cfg.load_size,
            crop_size=cfg.crop_size,
            preprocess=cfg.preprocess,
            flip=cfg.flip,
            grayscale=nc == 1,
        )

    dataset = UnpairedDataset(
        sources[0],
        sources[1],
        pipeline(cfg.input_nc),
        pipeline(cfg.output_nc),
        serial=cfg.serial_batches,
        seed=cfg.seed,
    )
    sampler = _ResumableSampler(
        dataset,
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=not cfg.serial_batches,
        seed=cfg.seed,
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        # Its own generator: each new iterator draws a worker base seed, which must not shift
        # the global random state (dropout) when a run resumes mid-epoch. Items are seeded by
        # (seed, epoch, index) in the dataset, so the worker seeds do not matter.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return dataset, sampler, loader


# ------------------------------------------------------------------------------------------
# one iteration


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def _train_step(
    cfg: TrainConfig,
    nets: _Nets,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    pool_fake_A: ImagePool,
    pool_fake_B: ImagePool,
    real_A: Tensor,
    real_B: Tensor,
    amp: Callable[[], contextlib.AbstractContextManager],
    gp_generator: torch.Generator,
) -> dict[str, Tensor]:
    G_A, G_B, D_A, D_B = nets.G_A, nets.G_B, nets.D_A, nets.D_B
    mode = cfg.gan_mode
    terms: dict[str, Tensor] = {}

    # (1) translate both ways and back
    with amp():
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)

    # (2) update G_A and G_B: fool the discriminators, reconstruct, keep identities.
    # D's parameters are frozen, and the unwrapped D is called so that DDP's gradient hooks are
    # not armed for a backward that gives D no gradients.
    D_A_plain, D_B_plain = nets.unwrapped("D_A"), nets.unwrapped("D_B")
    _set_requires_grad([D_A_plain, D_B_plain], False)
    opt_G.zero_grad(set_to_none=True)
    with amp():
        if cfg.lambda_identity > 0:
            # G_A should leave a B image unchanged, G_B an A image
            terms["idt_A"] = identity_loss(G_A(real_B), real_B) * cfg.lambda_b * cfg.lambda_identity
            terms["idt_B"] = identity_loss(G_B(real_A), real_A) * cfg.lambda_a * cfg.lambda_identity
        else:
            terms["idt_A"] = terms["idt_B"] = real_A.new_zeros(())
        terms["G_A"] = generator_adversarial_loss(D_A_plain(fake_B), mode)
        terms["G_B"] = generator_adversarial_loss(D_B_plain(fake_A), mode)
        terms["cycle_A"] = cycle_loss(rec_A, real_A) * cfg.lambda_a
        terms["cycle_B"] = cycle_loss(rec_B, real_B) * cfg.lambda_b
        loss_G = (
            terms["G_A"]
            + terms["G_B"]
            + terms["cycle_A"]
            + terms["cycle_B"]
            + terms["idt_A"]
            + terms["idt_B"]
        )
    scaler.scale(loss_G).backward()
    scaler.step(opt_G)

    # (3) update D_A and D_B: real images against fakes from the history pools
    _set_requires_grad([D_A_plain, D_B_plain], True)
    opt_D.zero_grad(set_to_none=True)
    pooled_B = pool_fake_B.query(fake_B.float())
    pooled_A = pool_fake_A.query(fake_A.float())
    with amp():
        terms["D_A"] = discriminator_loss(D_A(real_B), D_A(pooled_B), mode)
        terms["D_B"] = discriminator_loss(D_B(real_A), D_B(pooled_A), mode)
    loss_D = terms["D_A"] + terms["D_B"]
    if mode == "wgangp":
        # in fp32, outside autocast: the double backward is fragile in half precision
        terms["gp_A"] = patch_gradient_penalty(
            D_A_plain, real_B.float(), pooled_B, generator=gp_generator
        )
        terms["gp_B"] = patch_gradient_penalty(
            D_B_plain, real_A.float(), pooled_A, generator=gp_generator
        )
        loss_D = loss_D + cfg.lambda_gp * (terms["gp_A"] + terms["gp_B"])
    scaler.scale(loss_D).backward()
    scaler.step(opt_D)
    scaler.update()
    return {k: v.detach().float() for k, v in terms.items()}


# ------------------------------------------------------------------------------------------
# interruption


class _StopRequest:
    """Turns the first Ctrl-C into a request to stop at the next step boundary (so the
    checkpoint written on the way out is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ------------------------------------------------------------------------------------------
# the loop


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    resume: bool = False,
    callback: Callable[[Event], None] | None = None,
    max_steps: int | None = None,
) -> TrainResult:
    """Train a CycleGAN, writing the run folder ``run_dir``.

    Args:
        config: the run's settings (for ``resume``, see :func:`load_run_config`).
        run_dir: the run folder; created for a new run, read back for ``resume``.
        device: where to train. Under ``torchrun`` each process takes ``cuda:LOCAL_RANK``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 with a gradient scaler).
        resume: continue from ``run_dir/checkpoints/latest.pt``.
        callback: receives :class:`~transfigure.progress.Event` s (bars per epoch, log lines).
        max_steps: stop (with a checkpoint) after this many iterations in this call — for
            tests and benchmarks; the run can be resumed.

    Returns:
        The files of the run.

    Raises:
        ValueError: a bad setting. FileNotFoundError: missing data or run folder.
        ModelFileError: an unreadable checkpoint. KeyboardInterrupt: after Ctrl-C, once the
        checkpoint of the last completed step is written.
    """
    config.validate()
    emit = callback or (lambda event: None)
    run_dir = Path(run_dir)
    device = torch.device(device)
    runtime.precision_dtype(precision)  # validates the name
    dist = runtime.init_distributed(device)
    if dist.distributed and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    main = dist.rank == 0
    ckpt_dir = run_dir / "checkpoints"
    latest = ckpt_dir / "latest.pt"
    metrics_path = run_dir / "metrics.jsonl"

    state: dict[str, Any] | None = None
    if resume:
        if not latest.is_file():
            raise FileNotFoundError(f"{run_dir}: nothing to resume (no checkpoints/latest.pt)")
        state = load_training_state(latest, map_location="cpu")
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ModelFileError(f"{latest}: unknown checkpoint format {state.get('format')!r}")
        saved = TrainConfig(
            **{
                k: v
                for k, v in state["config"].items()
                if k in {f.name for f in dataclasses.fields(TrainConfig)}
            }
        )
        changed = [
            f.name
            for f in dataclasses.fields(TrainConfig)
            if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)
        ]
        if changed:
            raise ValueError(
                f"the config differs from the run's in {', '.join(changed)}; only "
                f"{', '.join(sorted(RESUMABLE_CHANGES))} may change on resume"
            )
        done_epochs = int(state["epoch"])
        if config.total_epochs < done_epochs:
            raise ValueError(
                f"the run has already done {done_epochs} epochs; ask for at least that many "
                f"(n_epochs + n_epochs_decay = {config.total_epochs})"
            )
    elif (run_dir / "config.json").exists() or latest.exists():
        raise FileExistsError(f"{run_dir} already holds a run: resume it or choose another folder")

    # -- networks, optimisers, pools --------------------------------------------------------
    init_gen = torch.Generator().manual_seed(config.seed)
    cfg_G_A, cfg_G_B = config.generator_config("a2b"), config.generator_config("b2a")
    nets = _Nets(
        G_A=build_generator(cfg_G_A, generator=init_gen),
        G_B=build_generator(cfg_G_B, generator=init_gen),
        D_A=build_discriminator(config.discriminator_config("B"), generator=init_gen),
        D_B=build_discriminator(config.discriminator_config("A"), generator=init_gen),
    )
    if state is not None:
        for name in nets.names():
            getattr(nets, name).load_state_dict(state["nets"][name])
    use_channels_last = config.channels_last and device.type == "cuda"
    memory_format = torch.channels_last if use_channels_last else torch.contiguous_format
    for name in nets.names():
        net = getattr(nets, name).to(device, memory_format=memory_format)
        if dist.distributed:
            if config.norm == "batch" and device.type == "cuda":
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )
        setattr(nets, name, net.train())

    betas = (config.beta1, config.beta2)
    opt_G = torch.optim.Adam(
        itertools.chain(nets.G_A.parameters(), nets.G_B.parameters()), lr=config.lr, betas=betas
    )
    opt_D = torch.optim.Adam(
        itertools.chain(nets.D_A.parameters(), nets.D_B.parameters()), lr=config.lr, betas=betas
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    schedule = LRSchedule(
        config.lr_policy,
        n_epochs=config.n_epochs,
        n_epochs_decay=config.n_epochs_decay,
        step_size=config.lr_decay_iters,
    )
    pool_fake_A = ImagePool(config.pool_size, seed=config.seed * 2 + 1)
    pool_fake_B = ImagePool(config.pool_size, seed=config.seed * 2 + 2)
    gp_generator = torch.Generator().manual_seed(config.seed + 7919)

    start_epoch, start_step, global_step = 0, 0, 0
    epoch_sums: dict[str, float] = {}
    if state is not None:
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        if state.get("scaler") and precision == "fp16":
            scaler.load_state_dict(state["scaler"])
        schedule.load_state_dict(state["schedule"])
        pool_fake_A.load_state_dict(state["pool_fake_A"], device)
        pool_fake_B.load_state_dict(state["pool_fake_B"], device)
        gp_generator.set_state(state["gp_generator"])
        runtime.set_rng_state(state["rng"])
        start_epoch, start_step = int(state["epoch"]), int(state["step_in_epoch"])
        global_step = int(state["global_step"])
        epoch_sums = dict(state.get("epoch_sums", {}))
    else:
        runtime.seed_everything(config.seed + dist.rank)

    # -- data and run folder ----------------------------------------------------------------
    dataset, sampler, loader = _build_data(config, dist, device)
    fixed_a = _fixed_images(config, "A", config.n_samples)
    fixed_b = _fixed_images(config, "B", config.n_samples)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(
            run_dir / "config.json",
            {
                "kind": "cyclegan",
                "train": dataclasses.asdict(config),
                "generator_a2b": dataclasses.asdict(cfg_G_A),
                "generator_b2a": dataclasses.asdict(cfg_G_B),
                "runtime": {
                    "device": str(device),
                    "precision": precision,
                    "world_size": dist.world_size,
                },
            },
        )
        if resume:
            _truncate_metrics(metrics_path, global_step)
    if resume:
        emit(
            Event(
                task="resume",
                message=f"resuming {run_dir} at epoch {start_epoch + 1}, "
                f"iteration {start_step} of the epoch (step {global_step})",
            )
        )

    def amp() -> contextlib.AbstractContextManager:
        return runtime.autocast(device, precision)

    def checkpoint(epoch: int, step_in_epoch: int, path: Path) -> Path:
        return save_training_state(
            path,
            {
                "format": _CHECKPOINT_FORMAT,
                "config": dataclasses.asdict(config),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "nets": {n: nets.unwrapped(n).state_dict() for n in nets.names()},
                "opt_G": opt_G.state_dict(),
                "opt_D": opt_D.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "schedule": schedule.state_dict(),
                "pool_fake_A": pool_fake_A.state_dict(),
                "pool_fake_B": pool_fake_B.state_dict(),
                "gp_generator": gp_generator.get_state(),
                "rng": runtime.get_rng_state(),
                "epoch_sums": dict(epoch_sums),
                # the unlogged part of the current metrics window, so that a resumed run logs
                # exactly the lines an uninterrupted one would
                "window": {k: v.detach().cpu() for k, v in window.items()},
                "window_n": window_n,
            },
        )

    def export(epoch_done: int) -> tuple[Path, Path]:
        paths = []
        for name, direction, gcfg in (("G_A", "a2b", cfg_G_A), ("G_B", "b2a", cfg_G_B)):
            paths.append(
                save_model(
                    nets.unwrapped(name),
                    run_dir / f"generator_{direction}.safetensors",
                    kind="cyclegan-generator",
                    config=gcfg,
                    extra={
                        "direction": direction,
                        "epoch": epoch_done,
                        "domain_a": str(config.domain_dirs()[0]),
                        "domain_b": str(config.domain_dirs()[1]),
                        "trained_with": "transfigure train cyclegan",
                    },
                )
            )
        return paths[0], paths[1]

    result = TrainResult(run_dir, None, None, None, start_epoch, global_step)
    window: dict[str, Tensor] = {}
    window_n = 0
    if state is not None:
        window = {k: v.to(device) for k, v in state.get("window", {}).items()}
        window_n = int(state.get("window_n", 0))
    steps_this_call = 0
    total_epochs = config.total_epochs

    def flush(epoch: int, iteration: int, lr: float) -> dict[str, float]:
        """Log the mean of each term since the last line; count it into the epoch's means."""
        nonlocal window, window_n
        if window_n == 0:
            return {}
        means = {k: (v / window_n).item() for k, v in window.items()}
        if dist.distributed:
            means = {
                k: runtime.all_reduce_mean(torch.tensor(v, device=device)).item()
                for k, v in means.items()
            }
        order = [k for k in (*LOSS_TERMS, "gp_A", "gp_B") if k in means]
        record = {"epoch": epoch + 1, "iter": iteration, "step": global_step}
        record.update({k: means[k] for k in order})
        record["lr"] = lr
        if main:
            append_jsonl(metrics_path, record)
        for k, v in means.items():
            epoch_sums[k] = epoch_sums.get(k, 0.0) + v * window_n
        epoch_sums["_n"] = epoch_sums.get("_n", 0.0) + window_n
        window, window_n = {}, 0
        return means

    with _StopRequest() as stop:
        epoch = start_epoch
        while epoch < total_epochs:
            lr = config.lr * schedule.factor(epoch)
            for opt in (opt_G, opt_D):
                for group in opt.param_groups:
                    group["lr"] = lr
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch)
            skip = start_step if epoch == start_epoch else 0
            sampler.skip = skip * config.batch_size
            if skip == 0:
                epoch_sums = {}
            task = f"epoch {epoch + 1}/{total_epochs}"
            n_batches = math.ceil(sampler.num_samples / config.batch_size)
            t0 = time.perf_counter()
            iteration = skip
            shown: dict[str, float] = {}
            for batch in loader:
                real_A = batch["A"].to(device, non_blocking=True, memory_format=memory_format)
                real_B = batch["B"].to(device, non_blocking=True, memory_format=memory_format)
                terms = _train_step(
                    config,
                    nets,
                    opt_G,
                    opt_D,
                    scaler,
                    pool_fake_A,
                    pool_fake_B,
                    real_A,
                    real_B,
                    amp,
                    gp_generator,
                )
                iteration += 1
                global_step += 1
                steps_this_call += 1
                for k, v in terms.items():
                    window[k] = window.get(k, 0.0) + v
                window_n += 1
                if iteration % config.log_every == 0:
                    means = flush(epoch, iteration, lr)
                    shown = {k: means[k] for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A")}
                emit(Event(task=task, completed=iteration, total=n_batches, metrics=shown))
                out_of_steps = max_steps is not None and steps_this_call >= max_steps
                if (stop.requested or out_of_steps) and iteration < n_batches:
                    if main:
                        result.checkpoint = checkpoint(epoch, iteration, latest)
                    result.global_step = global_step
                    why = "interrupted" if stop.requested else f"stopped after {max_steps} steps"
                    emit(
                        Event(
                            task=task,
                            completed=iteration,
                            total=n_batches,
                            message=f"{why} at epoch {epoch + 1}, iteration {iteration}; "
                            f"checkpoint {latest}",
                        )
                    )
                    if stop.requested:
                        raise KeyboardInterrupt
                    return result

            # -- end of epoch: metrics, schedule, samples, models, checkpoints --------------
            flush(epoch, iteration, lr)
            n_seen = max(epoch_sums.get("_n", 0.0), 1.0)
            epoch_means = {k: v / n_seen for k, v in epoch_sums.items() if k != "_n"}
            schedule.observe(
                sum(epoch_means.get(k, 0.0) for k in ("G_A", "G_B", "cycle_A", "cycle_B"))
            )
            epoch += 1
            result.epochs_done = epoch
            result.global_step = global_step
            if main:
                strip = _sample_strip(nets, fixed_a, fixed_b, device)
                if strip is not None:
                    sample = save_grid(
                        strip, run_dir / "samples" / f"epoch_{epoch:03d}.png", nrow=6
                    )
                    result.samples.append(sample)
                result.generator_a2b, result.generator_b2a = export(epoch)
                result.checkpoint = checkpoint(epoch, 0, latest)
                if config.checkpoint_every and epoch % config.checkpoint_every == 0:
                    checkpoint(epoch, 0, ckpt_dir / f"epoch_{epoch:03d}.pt")
                plot_metrics(metrics_path, run_dir / "losses.png", CYCLEGAN_PANELS)
                write_run_report(run_dir, title=f"CycleGAN run {run_dir.name}")
            runtime.barrier()
            summary = "  ".join(f"{k} {epoch_means[k]:.3f}" for k in LOSS_TERMS if k in epoch_means)
            emit(
                Event(
                    task=task,
                    completed=n_batches,
                    total=n_batches,
                    metrics={
                        k: epoch_means[k] for k in ("G_A", "G_B", "D_A", "D_B") if k in epoch_means
                    },
                    message=f"{task}: {summary}  lr {lr:.2e}  ({time.perf_counter() - t0:.1f} s)",
                    done=True,
                )
            )
            epoch_sums = {}
            if stop.requested:
                raise KeyboardInterrupt
            if max_steps is not None and steps_this_call >= max_steps:
                break
    if main and result.generator_a2b is None and result.epochs_done > 0:
        # resumed a finished run with nothing left to do: point at what is there
        result.generator_a2b = run_dir / "generator_a2b.safetensors"
        result.generator_b2a = run_dir / "generator_b2a.safetensors"
        result.checkpoint = latest
    return result
