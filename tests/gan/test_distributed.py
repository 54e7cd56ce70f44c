"""Two-process (gloo, CPU) training: ranks stay in sync and only rank 0 writes the run folder."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.multiprocessing as mp

from tests.distributed import free_port, join_group
from tests.gan.helpers import make_step, step_class, tiny

CASES = {
    "dcgan": ("dcgan", {}),
    # conditional critic with the gradient penalty: double backward through DDP
    "cgan-wgan-gp": (
        "cgan",
        {
            "loss": "wasserstein",
            "gp_weight": 10.0,
            "n_critic": 2,
            "beta1": 0.0,
            "beta2": 0.9,
            "d_norm": "layer",
        },
    ),
}


def _worker(rank: int, world: int, port: int, root: str) -> None:
    join_group(rank, world, port)
    from transfigure import runtime

    try:
        for case, (name, overrides) in CASES.items():
            out = os.path.join(root, case)
            if rank == 0:
                os.makedirs(out)
            runtime.barrier()
            _case(rank, out, name, overrides)
    finally:
        runtime.barrier()
        runtime.cleanup_distributed()


def _case(rank: int, out: str, name: str, overrides: dict) -> None:
    from transfigure.training import train

    # 1. the step itself under DDP: after a few steps every rank holds the same weights
    torch.manual_seed(0)
    step = make_step(name, **overrides)
    torch.manual_seed(100 + rank)  # each rank sees different data and noise
    for _ in range(3):
        labels = torch.randint(0, 4, (8,))
        step.train_step((torch.rand(8, 3, 16, 16) * 2 - 1, labels))
    torch.save(
        {"g": step.generator.state_dict(), "d": step.discriminator.state_dict()},
        os.path.join(out, f"rank{rank}.pt"),
    )
    # 2. a whole run writing one folder
    events = []
    result = train(
        step_class(name),
        tiny(name, **overrides, data="shapes:64"),
        os.path.join(out, "run"),
        callback=events.append,
    )
    with open(os.path.join(out, f"events{rank}.json"), "w") as f:
        json.dump({"events": len(events), "steps": result.steps}, f)
    # 3. stopped mid-epoch and resumed: every rank restores its own random state
    config = tiny(name, **overrides, data="shapes:64", label_noise=0.1 if name == "dcgan" else 0)
    cut = os.path.join(out, "cut")
    whole = os.path.join(out, "whole")
    train(step_class(name), config, whole)
    train(step_class(name), config, cut, max_steps=3)
    train(step_class(name), config, cut, resume=True)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, free_port(), str(root)), nprocs=2, join=True)
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_two_process_gloo_run(two_process_runs, case):
    tmp_path = two_process_runs / case
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for net in ("g", "d"):
        for key in a[net]:
            if "running" in key or "num_batches" in key:
                continue  # buffers are per rank by design (broadcast_buffers=False)
            torch.testing.assert_close(a[net][key], b[net][key], rtol=0, atol=0, msg=key)
    assert not torch.equal(a["g"]["net.1.running_mean"], b["g"]["net.1.running_mean"])

    run = tmp_path / "run"
    # 64 images, 2 ranks, batch 8 → 4 steps per epoch and rank; 2 epochs
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 4, 6, 8]  # written once, not once per rank
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (run / "generator.safetensors").is_file() and (run / "checkpoints/latest.pt").is_file()
    leftovers = [p for p in run.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temp files from concurrent writers
    ev0 = json.loads((tmp_path / "events0.json").read_text())
    ev1 = json.loads((tmp_path / "events1.json").read_text())
    assert ev0["steps"] == ev1["steps"] == 8
    assert ev0["events"] > 0 and ev1["events"] == 0  # only rank 0 reports progress
    state = torch.load(run / "checkpoints/latest.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    whole = torch.load(tmp_path / "whole" / "checkpoints/latest.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "checkpoints/latest.pt", weights_only=True)
    for net in ("generator", "discriminator"):
        for key, value in whole["networks"][net].items():
            torch.testing.assert_close(cut["networks"][net][key], value, rtol=0, atol=0, msg=key)
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == (
        tmp_path / "whole" / "metrics.jsonl"
    ).read_text()
