"""CycleGAN trained by transfigure and by the reference implementation, side by side.

Both train on the same images with the same settings and iteration count (batch 1, the
reference's defaults otherwise); the reference runs unchanged from a checkout the user points
at (``--reference DIR``, its ``train.py``; it seeds nothing, so its runs are independent draws,
while transfigure's take ``--seeds``). Each trained G_A (A→B) translates the same held-out
``testA`` images through the same inference code (the reference's generator is converted with
``transfigure models import``), and both are scored with the same ``transfigure evaluate``:
FID and KID on bundled-VGG19 features against ``testB``, and the linear probe's share of
translations assigned to domain B. Translations are written as PNG, as the reference's
``test.py`` writes them; runs kept from before are re-scored so (``--no-train`` tabulates and
re-scores the kept runs without training new ones). A contact sheet shows eight translations
side by side.

One update of the two is the same computation (``benchmarks/cyclegan_lockstep.py``: identical
weights, batches and pool draws give equal losses and weights, bit for bit over 100 steps);
what differs is the epoch schedule. The reference's ``train.py`` steps its learning-rate
schedule one epoch early, so with ``--epochs 4`` it trains at 1, ⅔, ⅓ and 0 × lr and
transfigure at 1, 1, ⅔, ⅓ (see ``transfigure/cyclegan/schedule.py``).
Both resize with PIL's bicubic (transfigure shrank with OpenCV's area filter before 2026-12-01).

    python benchmarks/cyclegan_reference.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \\
        --data ../shared/data/horse2zebra --size 128 --images 200 --epochs 10 --seeds 0 1

Each finished run's row is kept in ``OUT/NAME.json`` (``reference-0``, ``transfigure-1``, …)
and reused by a later call with the same settings unless ``--fresh``, so seeds and sides can be
added run by run (``--sides reference --seeds 1``); the table, ``results.json`` and the contact
sheet are written from every requested row, new or kept.

Measured 2026-12-01 (128 px, 100 images a domain, 4 epochs = 400 iterations; the figures are
quoted here, the JSON stays on the machine that ran it: ``benchmarks/results`` is not
versioned): FID-VGG19 reference 2058.7 / 2151.1 (seeds
0 / 1), transfigure 2027.0 / 2026.9; KID 103.09 / 104.74 against 102.49 / 103.22; probe → zebra
0.83 / 0.83 against 0.80 / 0.65. Every translation turns green grass into savanna beige; the
reference's are more saturated and yellower (mean colour 6.6–9.9 from testB's, ours 22.9–25.9,
the input 25.0) and carry more fine checkerboard texture (detail 29 against 22–24), which the
probe reads as zebra: a transfigure run with the reference's effective schedule (1, ⅔, ⅓ × lr
over 300 iterations) drew strong checkerboard artefacts and scored probe 1.00 with its FID
worse (2307.9). Neither side draws stripes at this budget.

With the schedules matched (``--sides reference-matched``: the reference trains at
transfigure's 1, 1, ⅔, ⅓ × lr, then one epoch at lr 0) and the translations scored as PNG
(2026-12-02; the rows above and the first four seeds' first scores came from JPEG
translations, which blur the fine texture the probe reads), six runs of the reference and seven
of transfigure:

    seed                     0       1       2       3       4       5       6     mean
    FID-VGG19  reference   1965.5  2037.5  2118.2  2095.9  2026.4  2057.6     —    2050.2
               transfigure 2035.2  2039.3  2080.6  2111.7  2187.2  2085.4  2034.9  2082.0
    KID-VGG19  reference    99.52  101.69  104.31  104.08  102.37  102.99     —    102.49
               transfigure 102.89  103.44  103.98  104.83  105.96  104.44  101.72  103.90
    probe      reference     0.92    0.85    0.88    0.85    0.72    0.75     —     0.829
               transfigure   0.75    0.70    0.90    0.83    0.84    0.89    0.83   0.821

The sides overlap on every figure. The exact permutation test (every split of the 13 runs into
6 and 7) gives p = 0.43 for "transfigure's probe lower", 0.17 for "its FID higher" and 0.07
for "its KID higher": the probe means are equal within 0.01, FID and KID means are 1.6 % and
1.4 % higher, within one run-to-run spread (FID standard deviation 55 on both sides). The probe
gap of the first four seeds (0.86 against 0.73, scored from JPEG) closed with more runs: the
reference's seeds 4 and 5 scored 0.72 and 0.75, transfigure's seeds 4 to 6 0.83 to 0.89. The
contact sheet of all thirteen shows one picture: green meadows turned savanna beige, the horses
kept (dark ones now and then tinted violet or green, on both sides), faint checkerboard
texture, no stripes. Checked equal: the training step (the lockstep benchmark, on the
reference's own batches and pool draws), the data pipeline (the decoded files equal PIL's,
every training crop is the bicubic resize cropped and flipped, 48 flips in 100, 89 distinct
crops), the initialisation's distribution layer by layer, the logged learning rates, and the
exported generator (the last one trained). What differs between the sides is which random
numbers each run draws; at this budget that decides more than the implementation does.

The reference needs its own small dependency, ``dominate``: ``pip install --target DIR
dominate`` and pass ``--reference-path DIR``. Runs are long on a CPU (an iteration at 128 px
takes a few seconds): the iteration count is ``images × epochs`` per run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_name  # noqa: E402 (benchmarks/ is the script folder)

SIDES = ("reference", "reference-matched", "transfigure")
TRANSLATIONS = "png"  # how the scored translations are stored; rows scored otherwise are redone
# "reference-matched": the reference given one more constant epoch, so that it trains at
# transfigure's learning rates (1, 1, ⅔, ⅓ for 4 epochs) and then one epoch at lr 0, which
# changes no weight (Adam's step is lr × …); the same updates as transfigure's, nominally
# more iterations


def _run(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None, log: Path | None = None
) -> float:
    """Run a command, its output to ``log``; returns the wall time."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        done = subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def _subset(data: Path, out: Path, images: int, size: int) -> Path:
    """trainA/trainB: the first ``images`` of each (both tools take the sorted head with
    --max-dataset-size, so they are given the same files); testA/testB resized to ``size``."""
    root = out / "data"
    if root.exists():
        return root
    for split in ("trainA", "trainB"):
        (root / split).mkdir(parents=True)
        for path in sorted((data / split).iterdir())[:images]:
            shutil.copy(path, root / split / path.name)
    for split in ("testA", "testB"):
        (root / split).mkdir(parents=True)
        for path in sorted((data / split).iterdir()):
            with Image.open(path) as im:
                im.convert("RGB").resize((size, size), Image.BICUBIC).save(root / split / path.name)
    return root


def _kept_row(
    path: Path, model: Path, settings: dict[str, int], fresh: bool
) -> dict[str, Any] | None:
    """The row a finished run left in ``path``, or None when it must run (absent, ``fresh``).

    A row from other settings is an error rather than a silent re-run: its folder is shared.
    """
    if fresh or not path.exists():
        return None
    kept = json.loads(path.read_text())
    if kept["settings"] != settings:
        raise SystemExit(
            f"{path} was run with {kept['settings']}, not {settings}: "
            "use another --out, or --fresh to replace it"
        )
    if not model.is_file():
        raise SystemExit(f"{path} is kept but its generator {model} is gone: use --fresh")
    return kept["row"]


def _score(
    tf: list[str], env: dict[str, str], model: Path, data: Path, fake: Path
) -> dict[str, Any]:
    """Translate testA with ``model`` into ``fake`` (PNG) and score it against testB.

    PNG, as the reference's ``test.py`` writes: the inputs are JPEG, and re-encoding the
    translations as JPEG (quality 95, 4:2:0 chroma) moves their pixels by 5 to 8 levels on
    average and blurs exactly the fine texture the probe responds to.
    """
    shutil.rmtree(fake, ignore_errors=True)
    _run([*tf, "translate", str(model), str(data / "testA"), "-o", str(fake),
          "--direction", "a2b", "--format", "png"], env)  # fmt: skip
    scores = subprocess.run(
        [*tf, "evaluate", str(data / "testB"), str(fake), "--features", "vgg19",
         "--probe", str(data / "trainA"), str(data / "trainB"), "--json"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {**json.loads(scores), "translations": TRANSLATIONS}


def _look(folder: Path, size: int) -> dict[str, Any]:
    """What a folder of pictures looks like, in three numbers a probe may key on.

    ``rgb``: the mean colour (0–255 per channel); ``saturation``: the mean HSV saturation
    (0–255); ``detail``: the mean absolute Laplacian of the grey levels (fine texture, such as
    stripes or checkerboard artefacts). Images are compared at ``size`` × ``size``.
    """
    import numpy as np

    rgb, sat, detail = [], [], []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BICUBIC)
            a = np.asarray(im, dtype=np.float32)
            sat.append(np.asarray(im.convert("HSV"), dtype=np.float32)[..., 1].mean())
        rgb.append(a.mean((0, 1)))
        g = a.mean(-1)
        lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
        detail.append(np.abs(lap).mean())
    return {
        "rgb": [round(float(c), 1) for c in np.mean(rgb, 0)],
        "saturation": round(float(np.mean(sat)), 1),
        "detail": round(float(np.mean(detail)), 2),
    }


def _permutation_p(ours: list[float], theirs: list[float]) -> float:
    """One-sided exact permutation test: the chance that relabelling the runs at random gives
    ``mean(ours) - mean(theirs)`` at most the observed difference (small: ours lower)."""
    pooled = ours + theirs
    observed = sum(ours) / len(ours) - sum(theirs) / len(theirs)
    total = sum(pooled)
    # splits that tie with the observed one may sum in another order: a relative tolerance
    tie = 1e-9 * max(abs(v) for v in pooled)
    hits = count = 0
    for pick in itertools.combinations(range(len(pooled)), len(ours)):
        a = sum(pooled[i] for i in pick)
        diff = a / len(ours) - (total - a) / len(theirs)
        hits += diff <= observed + tie
        count += 1
    return hits / count


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: mean, min and max of each figure; transfigure against each reference side,
    the permutation test's p (one-sided, "transfigure lower")."""
    figures = {
        "fid": lambda r: r["scores"]["fid"],
        "kid": lambda r: r["scores"]["kid_mean"],
        "probe": lambda r: r["probe"]["fraction_target"],
    }
    sides = sorted({r["side"] for r in rows})
    summary: dict[str, Any] = {}
    print(f"\n{'side':17} {'runs':>4} {'FID-VGG mean (min-max)':>26} {'probe mean (min-max)':>22}")
    for side in sides:
        values = {k: [f(r) for r in rows if r["side"] == side] for k, f in figures.items()}
        summary[side] = {
            k: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "runs": len(v)}
            for k, v in values.items()
        }
        fid, probe = summary[side]["fid"], summary[side]["probe"]
        print(
            f"{side:17} {fid['runs']:>4} "
            f"{fid['mean']:>10.1f} ({fid['min']:.1f}-{fid['max']:.1f}) "
            f"{probe['mean']:>10.3f} ({probe['min']:.2f}-{probe['max']:.2f})"
        )
    ours = [r for r in rows if r["side"] == "transfigure"]
    for side in sides:
        theirs = [r for r in rows if r["side"] == side]
        if side == "transfigure" or len(ours) < 2 or len(theirs) < 2:
            continue
        tests = {}
        for k, f in figures.items():
            tests[k] = _permutation_p([f(r) for r in ours], [f(r) for r in theirs])
        summary[f"transfigure lower than {side}, p"] = tests
        print(
            f"transfigure lower than {side}? permutation p: FID {tests['fid']:.3f}, "
            f"KID {tests['kid']:.3f}, probe {tests['probe']:.3f} (lower FID/KID is better, "
            "lower probe worse)"
        )
    return summary


def _contact_sheet(rows: list[list[Path]], out: Path, size: int) -> None:
    sheet = Image.new("RGB", (size * len(rows[0]), size * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, path in enumerate(row):
            with Image.open(path) as im:
                sheet.paste(im.convert("RGB").resize((size, size)), (c * size, r * size))
    sheet.save(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="reference checkout")
    parser.add_argument("--reference-path", default="", help="extra PYTHONPATH (dominate)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/horse2zebra"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cyclegan-reference"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=200, help="training images per domain")
    parser.add_argument("--epochs", type=int, default=10, help="half constant, half decaying")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="re-run rows already kept in OUT")
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="only tabulate (and re-score) the runs kept in OUT; skip the others",
    )
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = _subset(args.data.resolve(), out, args.images, args.size)
    load = args.size + args.size // 8  # the reference's 286/256 margin
    n_const, n_decay = args.epochs - args.epochs // 2, args.epochs // 2
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    ref_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (args.reference_path,) if p)}
    tf = [sys.executable, "-m", "transfigure", "--device", "cpu", "--precision", "fp32"]
    settings = {"size": args.size, "images": args.images, "epochs": args.epochs}
    rows: list[dict[str, Any]] = []
    translated: dict[str, Path] = {}
    for seed in args.seeds:
        for side in args.sides:  # interleaved: the machine's load hits both
            name = f"{side}-{seed}"
            run = out / name
            fake = out / f"{name}-fake"
            if side.startswith("reference"):
                model = out / f"{name}.safetensors"
            else:
                model = run / "generator_a2b.safetensors"
            kept = _kept_row(out / f"{name}.json", model, settings, args.fresh)
            if kept is not None:
                if kept.get("translations") != TRANSLATIONS or not fake.is_dir():
                    # scored from JPEG translations (before 2026-12-02), or they are gone
                    kept = {**kept, **_score(tf, env, model, data, fake)}
                    (out / f"{name}.json").write_text(
                        json.dumps({"settings": settings, "row": kept}, indent=2)
                    )
                rows.append(kept)
                translated[name] = fake
                print(f"kept: {json.dumps(kept)}", flush=True)
                continue
            if args.no_train:
                print(f"no run {name} kept in {out}: skipped (--no-train)", flush=True)
                continue
            if side.startswith("reference"):
                shutil.rmtree(run, ignore_errors=True)
                ref_const = n_const + (side == "reference-matched")
                cmd = [sys.executable, "train.py", "--dataroot", str(data), "--name", name]
                cmd += ["--model", "cycle_gan", "--checkpoints_dir", str(out)]
                cmd += ["--load_size", str(load), "--crop_size", str(args.size)]
                cmd += ["--n_epochs", str(ref_const), "--n_epochs_decay", str(n_decay)]
                cmd += ["--gpu_ids", "-1", "--display_id", "-1", "--no_html", "--num_threads", "0"]
                # the reference writes latest_net_* when the epoch is a multiple of this
                cmd += ["--save_epoch_freq", str(ref_const + n_decay), "--print_freq", "100000"]
                seconds = _run(cmd, ref_env, cwd=args.reference, log=out / f"{name}.log")
                _run([*tf, "models", "import", str(run / "latest_net_G_A.pth"), "-o", str(model),
                      "--direction", "a2b", "--overwrite"], env)  # fmt: skip
            else:
                shutil.rmtree(run, ignore_errors=True)
                cmd = [*tf, "--seed", str(seed), "train", "cyclegan", str(data), "-o", str(run)]
                cmd += ["--load-size", str(load), "--crop-size", str(args.size), "--workers", "0"]
                cmd += ["--n-epochs", str(n_const), "--n-epochs-decay", str(n_decay)]
                cmd += ["--checkpoint-every", "0"]
                seconds = _run(cmd, env, log=out / f"{name}.log")
            result = _score(tf, env, model, data, fake)
            rows.append({"side": side, "seed": seed, "train_s": seconds, **result})
            (out / f"{name}.json").write_text(
                json.dumps({"settings": settings, "row": rows[-1]}, indent=2)
            )
            translated[name] = fake
            print(json.dumps(rows[-1]), flush=True)

    # eight translations: input, then per seed transfigure | reference (the sides that ran)
    names = [
        f"{side}-{seed}"
        for seed in args.seeds
        for side in ("transfigure", "reference", "reference-matched")
        if f"{side}-{seed}" in translated  # requested, and run or kept
    ]
    columns = [translated[name] for name in names]
    inputs = sorted((data / "testA").iterdir())[:8]
    sheet_rows = []
    for path in inputs:
        row = [path]
        for folder in columns:
            row.append(sorted(folder.glob(path.stem + ".*"))[0])
        sheet_rows.append(row)
    _contact_sheet(sheet_rows, out / "side_by_side.png", args.size)

    import torch

    meta = {
        "cpu": cpu_name(),
        "threads": args.threads,
        "torch": torch.__version__,
        "size": args.size,
        "images": args.images,
        "epochs": args.epochs,
        "iterations": args.images * args.epochs,
        "seeds": args.seeds,
        "sides": args.sides,
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\n{meta}")
    print(f"{'side':17} {'seed':>4} {'train s':>8} {'FID-VGG':>9} {'KID':>8} {'probe→B':>8}")
    for r in rows:
        fid, kid = r["scores"]["fid"], r["scores"]["kid_mean"]
        probe = r["probe"]["fraction_target"]
        # a run resumed after an interruption has no comparable training time
        train = "—" if r["train_s"] is None else f"{r['train_s']:.0f}"
        line = f"{r['side']:17} {r['seed']:>4} {train:>8}"
        print(f"{line} {fid:9.1f} {kid:8.2f} {probe:8.2f}")
    meta["summary"] = _summary(rows)
    # what the pictures look like: the probe can be fooled by colour alone, so show it
    target = _look(data / "testB", args.size)
    looks = {"input testA": _look(data / "testA", args.size), "target testB": target}
    looks.update({f"{r['side']} {r['seed']}": _look(translated[f"{r['side']}-{r['seed']}"],
                                                    args.size) for r in rows})  # fmt: skip
    print(f"\n{'pictures':21} {'mean RGB':>20} {'to testB':>9} {'saturation':>11} {'detail':>7}")
    for name, look in looks.items():
        far = sum((a - b) ** 2 for a, b in zip(look["rgb"], target["rgb"], strict=True)) ** 0.5
        rgb = "/".join(f"{c:.0f}" for c in look["rgb"])
        print(f"{name:21} {rgb:>20} {far:9.1f} {look['saturation']:11.1f} {look['detail']:7.2f}")
    meta["looks"] = looks
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    order = ", ".join(name.rsplit("-", 1)[0] + " " + name.rsplit("-", 1)[1] for name in names)
    print(f"contact sheet: {out / 'side_by_side.png'} (columns: input, {order})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
