"""CycleGAN's training step against the reference implementation's, in lockstep.

Independent training runs differ by seed luck (initial weights, crops, pairings, pool draws),
and at a small budget that luck moves FID and the probe more than any implementation detail
could. This benchmark removes it: both sides start from the same weights, take the same
batches and make the same image-pool draws, and after every step every loss term and every
weight of the four networks is compared.

- Weights: the reference's ``CycleGANModel`` is built unchanged from a checkout
  (``--reference DIR``) with its own initialisation (``torch.manual_seed(--seed)``, N(0, 0.02));
  its tensors are copied into transfigure's ``CycleGANStep`` in order, each shape checked.
- Batches: the reference's own data loader (``UnalignedDataset``: bicubic resize to
  ``--load-size``, random crop, random flip, a random B partner per A image), fed to both.
- Pools: the reference's ``ImagePool`` draws with Python's ``random`` (``uniform`` then
  ``randint``), transfigure's with a ``torch.Generator``. The module ``random`` that the
  reference's pool sees is replaced by draws from twins of transfigure's two pool generators
  (same seed and state), so both pools make the same choices.

By default each step starts both sides from the reference's state (weights, Adam moments,
pooled images), so a difference cannot compound: it shows what one step computes. Compared per
step: every loss term (relative difference, tolerance 1e-4 at every step), each network's
gradient and update (‖ours − reference‖ / ‖reference‖ over the network). The gradients are
judged by their median over the steps (tolerance 5e-3), because in float32 single steps jump:
a discriminator's gradient with respect to its input changes abruptly wherever a LeakyReLU
input crosses zero, and instance norms over small, nearly flat feature maps magnify rounding
(in a narrow discriminator on a 32-px image float32 and float64 gradients differ by 2 %; at
64 px the reference's own float32 gradient is about 1e-3 from its float64 one). A systematic
difference (a missing or rescaled term, a wrong detach) shows in every step, and a missing or
rescaled term in the loss terms first. The
update is reported, not judged: Adam's first step is about ±lr for every weight, so a weight
whose gradient is rounding noise (the bias of a convolution that an instance norm follows has
a true gradient of zero) moves by ±lr on either side at random.

Measured 2026-12-01 (horse2zebra, 64 px, one thread): with transfigure's group-norm instance
norm, 100 steps with pool 50 (50 of them drawing from the pools): every loss term within
1.3e-6 of the reference's at every step, gradients median 3.6e-4 apart (largest 1.0e-2); with
the generators also taking two images per call, 40 steps with pool 20: loss terms within
1.5e-6, gradients median 1.9e-3 apart (largest 1.1e-2): equal to float rounding.
At 64 px the residual blocks' 16×16 maps are below the size where transfigure computes its
3×3 convolutions with Winograd's algorithm (``transfigure/winograd.py``); from 128 px on they
take that path, which rounds differently again (relative 1e-5 per convolution), and
``TRANSFIGURE_WINOGRAD=0`` compares with PyTorch's kernels instead.

``--free-running`` lets each side carry its own state instead: bit-identical kernels then stay
identical (before the group-norm instance norm the two sides were: 100 steps as above, every
loss and every weight equal bit for bit at every step), while any rounding difference grows
the way GAN training amplifies it (with transfigure's group-norm instance norm: loss terms
2e-6 apart at step 1, 8e-3 at step 2, 0.35 at step 10).

Beyond tolerance, the first step and term (or the gradients) are printed and the script exits
1; the per-step figures go to ``--out`` as JSON.

    python benchmarks/cyclegan_lockstep.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \\
        --reference-path DIR_WITH_DOMINATE --data ../shared/data/horse2zebra \\
        --size 64 --steps 100 --pool-size 50
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TERMS = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
NETS = ("G_A", "G_B", "D_A", "D_B")


class _SharedDraws:
    """Stands in for the module ``random`` inside the reference's ``util.image_pool``: its
    ``uniform`` and ``randint`` draw from the torch generator of the pool being queried, the
    way transfigure's :class:`~transfigure.cyclegan.pool.ImagePool` draws."""

    def __init__(self) -> None:
        self.generator: Any = None

    def uniform(self, low: float, high: float) -> float:
        import torch

        return low + (high - low) * float(torch.rand((), generator=self.generator).item())

    def randint(self, low: int, high: int) -> int:
        import torch

        return low + int(torch.randint(high - low + 1, (), generator=self.generator))


def _share_draws(reference_pool: Any, generator: Any, draws: _SharedDraws) -> None:
    query = reference_pool.query

    def synced(images: Any) -> Any:
        draws.generator = generator
        return query(images)

    reference_pool.query = synced


def _copy_weights(source: Any, target: Any, name: str) -> int:
    """Copy ``source``'s tensors into ``target`` in order, shapes checked; returns the count."""
    src, dst = list(source.state_dict().items()), list(target.state_dict().items())
    if len(src) != len(dst):
        raise SystemExit(f"{name}: the reference has {len(src)} tensors, transfigure {len(dst)}")
    state = {}
    for (k_src, v_src), (k_dst, v_dst) in zip(src, dst, strict=True):
        if v_src.shape != v_dst.shape:
            raise SystemExit(
                f"{name}: reference {k_src} {tuple(v_src.shape)} against transfigure {k_dst} "
                f"{tuple(v_dst.shape)}: the architectures differ"
            )
        state[k_dst] = v_src.detach().clone()
    target.load_state_dict(state, strict=True)
    return len(state)


def _ratio(num: float, den: float) -> float:
    return (num / den) ** 0.5 if den > 0 else float(num > 0)


def _state(reference: Any) -> dict[str, Any]:
    """The reference's training state: weights, optimiser states, pooled images (copies).
    ``nets`` holds each network's parameters: the same tensors as in ``buffers``."""
    state = {n: copy.deepcopy(getattr(reference, "net" + n).state_dict()) for n in NETS}
    return {
        "nets": {
            n: {k: state[n][k] for k, _ in getattr(reference, "net" + n).named_parameters()}
            for n in NETS
        },
        "buffers": state,
        "opt_G": copy.deepcopy(reference.optimizer_G.state_dict()),
        "opt_D": copy.deepcopy(reference.optimizer_D.state_dict()),
        "pool_fake_A": [im.clone() for im in reference.fake_A_pool.images],
        "pool_fake_B": [im.clone() for im in reference.fake_B_pool.images],
    }


def _load_state(ours: Any, state: dict[str, Any]) -> None:
    """Put transfigure's step into the reference's state (tensors in order, as copied)."""
    for n in NETS:
        net = getattr(ours, n)
        net.load_state_dict(dict(zip(net.state_dict(), state["buffers"][n].values(), strict=True)))
    ours.opt_G.load_state_dict(copy.deepcopy(state["opt_G"]))
    ours.opt_D.load_state_dict(copy.deepcopy(state["opt_D"]))
    ours.pool_fake_A.images = [im.clone() for im in state["pool_fake_A"]]
    ours.pool_fake_B.images = [im.clone() for im in state["pool_fake_B"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="reference checkout")
    parser.add_argument("--reference-path", default="", help="extra import path (dominate)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/horse2zebra")
    parser.add_argument("--size", type=int, default=64, help="crop size")
    parser.add_argument("--load-size", type=int, default=None, help="default: size + size/8")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--pool-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--free-running",
        action="store_true",
        help="let each side carry its own state from step to step (differences compound)",
    )
    parser.add_argument(
        "--loss-tolerance", type=float, default=1e-4, help="largest relative loss difference"
    )
    parser.add_argument(
        "--gradient-tolerance",
        type=float,
        default=5e-3,
        help="largest median (over the steps) relative difference of the networks' gradients",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/lockstep.json")
    args = parser.parse_args(argv)
    load_size = args.load_size or args.size + args.size // 8

    for path in (args.reference_path, str(args.reference.resolve())):
        if path:
            sys.path.insert(0, path)
    sys.path.insert(0, str(ROOT))
    import tempfile

    import torch

    from transfigure.cyclegan.config import TrainConfig
    from transfigure.cyclegan.step import CycleGANStep

    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="lockstep-")
    sys.argv = [
        "train.py", "--dataroot", str(args.data.resolve()), "--name", "lockstep",
        "--model", "cycle_gan", "--checkpoints_dir", tmp, "--gpu_ids", "-1",
        "--pool_size", str(args.pool_size), "--crop_size", str(args.size),
        "--load_size", str(load_size), "--num_threads", "0", "--display_id", "-1",
        "--max_dataset_size", str(args.steps),
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        import util.image_pool as reference_pool_module
        from data import create_dataset
        from models import create_model
        from options.train_options import TrainOptions

        opt = TrainOptions().parse()
        torch.manual_seed(args.seed)
        reference = create_model(opt)
        reference.setup(opt)
        loader = create_dataset(opt)

    config = TrainConfig(
        data_root=str(args.data),
        crop_size=args.size,
        load_size=load_size,
        pool_size=args.pool_size,
        seed=args.seed,
    )
    ours = CycleGANStep(config, device="cpu", precision="fp32")
    copied = {n: _copy_weights(getattr(reference, "net" + n), getattr(ours, n), n) for n in NETS}
    # twins of transfigure's pool generators (same seed and state) serve the reference's pools,
    # so each side consumes its own copy of one sequence of draws
    draws = _SharedDraws()
    reference_pool_module.random = draws
    for reference_pool, pool in (
        (reference.fake_B_pool, ours.pool_fake_B),
        (reference.fake_A_pool, ours.pool_fake_A),
    ):
        twin = torch.Generator()
        twin.set_state(pool.generator.get_state())
        _share_draws(reference_pool, twin, draws)

    print(
        f"weights copied ({', '.join(f'{n}: {k} tensors' for n, k in copied.items())}); "
        f"{args.steps} steps at {args.size} px (load {load_size}), pool {args.pool_size}, "
        f"{args.threads} thread(s), torch {torch.__version__}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    parted: dict[str, Any] | None = None
    start = time.perf_counter()
    batches = iter(loader)
    for step in range(1, args.steps + 1):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        before = _state(reference)
        if not args.free_running:
            _load_state(ours, before)
        reference.set_input(batch)
        reference.optimize_parameters()
        terms = ours.train_step({"A": batch["A"].clone(), "B": batch["B"].clone()})
        ref_terms = {k: float(getattr(reference, "loss_" + k).detach()) for k in TERMS}
        loss_diff = {
            k: abs(ref_terms[k] - float(terms[k])) / max(abs(ref_terms[k]), 1e-12) for k in TERMS
        }
        grad_diff, update_diff = {}, {}
        for n in NETS:  # ‖x_ours − x_ref‖ / ‖x_ref‖ over the network, x = gradient or update
            sums = dict.fromkeys(("g_num", "g_den", "u_num", "u_den"), 0.0)
            for w0, p, q in zip(
                before["nets"][n].values(),
                getattr(reference, "net" + n).parameters(),
                getattr(ours, n).parameters(),
                strict=True,
            ):
                if p.grad is not None and q.grad is not None:
                    sums["g_num"] += float((q.grad - p.grad).double().square().sum())
                    sums["g_den"] += float(p.grad.double().square().sum())
                sums["u_num"] += float((q.detach() - p.detach()).double().square().sum())
                sums["u_den"] += float((p.detach() - w0).double().square().sum())
            grad_diff[n] = _ratio(sums["g_num"], sums["g_den"])
            update_diff[n] = _ratio(sums["u_num"], sums["u_den"])
        row = {
            "step": step,
            "max_relative_loss_difference": max(loss_diff.values()),
            "max_relative_gradient_difference": max(grad_diff.values()),
            "max_relative_update_difference": max(update_diff.values()),
            "reference": ref_terms,
        }
        rows.append(row)
        if parted is None and row["max_relative_loss_difference"] > args.loss_tolerance:
            term = max(loss_diff.items(), key=lambda kv: kv[1])
            parted = {"step": step, "term": term[0], "relative": term[1]}
        if step == 1 or step % 10 == 0 or step == args.steps:
            print(
                f"step {step:4d}: max relative loss difference "
                f"{row['max_relative_loss_difference']:.1e}, gradient "
                f"{row['max_relative_gradient_difference']:.1e}, update "
                f"{row['max_relative_update_difference']:.1e}  (reference G_A "
                f"{ref_terms['G_A']:.4f}, D_A {ref_terms['D_A']:.4f})",
                flush=True,
            )
    seconds = time.perf_counter() - start
    identical = all(
        r["max_relative_loss_difference"] == 0
        and r["max_relative_gradient_difference"] == 0
        and r["max_relative_update_difference"] == 0
        for r in rows
    )
    gradients = sorted(r["max_relative_gradient_difference"] for r in rows)
    median_gradient = gradients[len(gradients) // 2]
    if parted is None and median_gradient > args.gradient_tolerance:
        parted = {"step": None, "term": "gradients", "relative": median_gradient}
    verdict = (
        "identical" if identical
        else "equal to float rounding" if parted is None
        else f"gradients apart (median relative difference {median_gradient:.1e})"
        if parted["step"] is None
        else f"part at step {parted['step']} ({parted['term']}, relative {parted['relative']:.1e})"
    )  # fmt: skip
    largest_loss = max(r["max_relative_loss_difference"] for r in rows)
    print(
        f"largest relative loss difference {largest_loss:.1e}; gradient difference median "
        f"{median_gradient:.1e}, largest {gradients[-1]:.1e}"
    )
    mode = "free-running" if args.free_running else "each step from the reference's state"
    print(f"{args.steps} steps in {seconds:.0f} s ({mode}): {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "settings": {**{k: str(v) for k, v in vars(args).items()}, "load": load_size},
                "torch": torch.__version__,
                "verdict": verdict,
                "rows": rows,
            },
            indent=1,
        )
    )
    return 0 if parted is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
