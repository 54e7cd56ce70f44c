"""CUT and FastCUT under two-process DistributedDataParallel (gloo, CPU): the generator, the
discriminator and the projection head stay identical on every rank."""

from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp

from tests.distributed import free_port, join_group


def _worker(rank: int, world: int, port: int, out: str) -> None:
    join_group(rank, world, port)
    from transfigure import runtime
    from transfigure.cut.config import TrainConfig
    from transfigure.cut.step import CUTStep

    try:
        for mode in ("cut", "fastcut"):
            torch.manual_seed(0)
            cfg = TrainConfig(
                data_root="unused", mode=mode, crop_size=32, load_size=32, ngf=4, ndf=4,
                net_g="resnet_6blocks",
            )  # fmt: skip
            step = CUTStep(cfg, device="cpu", precision="fp32")
            initial = {k: v.clone() for k, v in step.G.state_dict().items()}
            torch.manual_seed(100 + rank)  # each rank sees other images
            for _ in range(3):
                batch = {k: torch.rand(1, 3, 32, 32) * 2 - 1 for k in "AB"}
                step.train_step(batch)
            nets = {name: net.state_dict() for name, net in step.networks().items()}
            torch.save({**nets, "G_initial": initial}, os.path.join(out, f"{mode}{rank}.pt"))
    finally:
        runtime.cleanup_distributed()


def test_ranks_hold_the_same_weights_after_a_few_steps(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for mode in ("cut", "fastcut"):
        a = torch.load(tmp_path / f"{mode}0.pt", weights_only=True)
        b = torch.load(tmp_path / f"{mode}1.pt", weights_only=True)
        assert set(a) == {"G", "D", "F", "G_initial"}
        for net in ("G", "D", "F"):
            for key, value in a[net].items():
                torch.testing.assert_close(b[net][key], value, rtol=0, atol=0, msg=f"{net}.{key}")
        # and the steps did update the generator (the same way on both ranks)
        assert any(not torch.equal(a["G"][k], v) for k, v in a["G_initial"].items())
