"""The reference's pretrained pix2pix generators: names, URLs, download, conversion, import."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.http_server import LocalHTTPServer
from transfigure.checkpoint import load_model, read_model_info
from transfigure.cli import main
from transfigure.cyclegan import zoo
from transfigure.cyclegan.networks import UnetGenerator, init_weights
from transfigure.cyclegan.translate import load_translator

PIX2PIX = {
    "facades_label2photo_pix2pix": "facades_label2photo",
    "sat2map_pix2pix": "sat2map",
    "map2sat_pix2pix": "map2sat",
    "edges2shoes": "edges2shoes",
    "edges2handbags": "edges2handbags",
    "day2night": "day2night",
}


def reference_unet(seed: int = 0) -> nn.Module:
    """The reference's unet_256 (batch norm, dropout) at ngf 4, as its zoo files hold it."""
    net = UnetGenerator(3, 3, 8, ngf=4, norm="batch", use_dropout=True)
    net = init_weights(net, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.fill_(1.5)
    return net.eval()


def test_pix2pix_entries_and_urls(monkeypatch):
    monkeypatch.delenv(zoo.PIX2PIX_BASE_URL_ENV, raising=False)
    pix = [n for n in zoo.pretrained_names() if zoo.PRETRAINED[n].family == "pix2pix"]
    assert pix == list(PIX2PIX)
    for name, file_name in PIX2PIX.items():
        assert zoo.model_url(name) == (
            f"http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{file_name}.pth"
        )
    # the CycleGAN models of the same reference name are unchanged
    assert zoo.model_url("sat2map").startswith(zoo.base_url())
    monkeypatch.setenv(zoo.PIX2PIX_BASE_URL_ENV, "http://127.0.0.1:9/p/")
    assert zoo.model_url("day2night") == "http://127.0.0.1:9/p/day2night.pth"


@pytest.fixture
def server(tmp_path, monkeypatch):
    root = tmp_path / "served"
    root.mkdir()
    state = reference_unet(seed=5).state_dict()
    # the reference's files predate num_batches_tracked
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, root / "facades_label2photo.pth", _use_new_zipfile_serialization=False)
    with LocalHTTPServer(root) as srv:
        monkeypatch.setenv(zoo.PIX2PIX_BASE_URL_ENV, srv.base_url)
        yield srv


def test_download_converts_unet_with_dropout_at_test(server):
    path = zoo.ensure_pretrained("facades_label2photo_pix2pix")
    info = read_model_info(path)
    assert info.kind == "cyclegan-generator"
    assert info.config["netG"] == "unet_256" and info.config["norm"] == "batch"
    assert info.config["use_dropout"] is True and info.config["dropout_at_test"] is True
    assert info.extra["source"] == f"{server.base_url}/facades_label2photo.pth"
    assert any("num_batches_tracked" in n for n in info.extra["inferred"])
    net, _ = load_model(path)
    ref = reference_unet(seed=5)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    # dropout stays on in eval: outputs vary, and differ from the dropout-free reference
    assert not torch.equal(net.eval()(x), net(x))
    for m in net.modules():  # with dropout off it computes what the reference file computes
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    torch.testing.assert_close(net(x), ref(x))
    # translate loads it by name (the zoo's cache) and knows it needs multiples of 256
    translator, tinfo = load_translator("facades_label2photo_pix2pix")
    assert tinfo.config["netG"] == "unet_256"


def test_cli_import_reference_unet_and_foreign_generator(runner, tmp_path):
    from tests.cyclegan.test_importer import ForeignGenerator

    torch.save(reference_unet().state_dict(), tmp_path / "latest_net_G.pth")
    result = runner.invoke(main, ["models", "import", str(tmp_path / "latest_net_G.pth")])
    assert result.exit_code == 0, result.output
    info = read_model_info(tmp_path / "latest_net_G.safetensors")
    assert info.config["netG"] == "unet_256" and info.config["dropout_at_test"] is True

    foreign = ForeignGenerator(affine=True)
    torch.save({"epoch": 3, "G_AB": foreign.state_dict()}, tmp_path / "G_AB_3.pth")
    result = runner.invoke(main, ["models", "import", str(tmp_path / "G_AB_3.pth")])
    assert result.exit_code == 0, result.output
    info = read_model_info(tmp_path / "G_AB_3.safetensors")
    assert info.config["norm"] == "instance_affine"
    assert info.extra["imported_from"] == "a generator state dict, mapped by structure"
    assert info.extra["inferred"][0] == "weights taken from the entry 'G_AB' (ignored: epoch)"
    assert "inferred: weights taken from the entry 'G_AB'" in result.stderr
    assert "inferred: norm: instance norm with learned scale and shift" in result.stderr
    assert result.stdout.strip() == str(tmp_path / "G_AB_3.safetensors")

    state = foreign.state_dict()
    state["up.3.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    result = runner.invoke(main, ["models", "import", str(tmp_path / "broken.pth")])
    assert result.exit_code == 1
    assert "cannot place up.3.weight (1,)" in result.stderr
