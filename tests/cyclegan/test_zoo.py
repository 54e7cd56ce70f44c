"""The pretrained model zoo: names, import of reference .pth files, download and conversion."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.http_server import LocalHTTPServer
from transfigure.checkpoint import ModelFileError, load_model, read_model_info
from transfigure.cli import main
from transfigure.cyclegan import zoo
from transfigure.cyclegan.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
)
from transfigure.cyclegan.translate import load_translator, translate_tensor
from transfigure.download import DownloadError, cache_dir


def reference_generator(
    ngf: int = 4, n_blocks: int = 9, seed: int = 0, **kwargs
) -> ResnetGenerator:
    net = ResnetGenerator(3, 3, ngf=ngf, n_blocks=n_blocks, **kwargs)
    return init_weights(net, generator=torch.Generator().manual_seed(seed)).eval()


def with_stale_instance_norm_stats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What PyTorch < 0.4 saved: running stats for every InstanceNorm (tracked by default then)."""
    out = dict(state)
    ngf = state["model.1.weight"].shape[0]
    norms = {"model.2": ngf, "model.5": 2 * ngf, "model.8": 4 * ngf}
    blocks = sorted({k.split(".")[1] for k in state if ".conv_block." in k}, key=int)
    for b in blocks:
        norms[f"model.{b}.conv_block.2"] = 4 * ngf
        norms[f"model.{b}.conv_block.6"] = 4 * ngf
    up = 10 + len(blocks)
    norms[f"model.{up + 1}"] = 2 * ngf
    norms[f"model.{up + 4}"] = ngf
    for prefix, channels in norms.items():
        out[f"{prefix}.running_mean"] = torch.randn(channels)
        out[f"{prefix}.running_var"] = torch.rand(channels) + 0.5
        out[f"{prefix}.num_batches_tracked"] = torch.tensor(7)
    return out


def save_reference_pth(path: Path, net: torch.nn.Module, *, legacy: bool = True) -> Path:
    state = with_stale_instance_norm_stats(net.state_dict())
    path.parent.mkdir(parents=True, exist_ok=True)
    # The zoo's files predate the zip format: write the legacy serialisation too.
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


# ---------------------------------------------------------------------------------- names


def test_the_reference_zoo_has_its_18_generators():
    names = [n for n in zoo.pretrained_names() if zoo.PRETRAINED[n].family == "cyclegan"]
    assert len(names) == 18 == len(set(names))
    assert len(set(zoo.pretrained_names())) == len(zoo.pretrained_names())
    for name in (
        "horse2zebra",
        "zebra2horse",
        "summer2winter_yosemite",
        "winter2summer_yosemite",
        "monet2photo",
        "style_monet",
        "style_cezanne",
        "style_ukiyoe",
        "style_vangogh",
        "apple2orange",
        "orange2apple",
        "sat2map",
        "map2sat",
        "cityscapes_photo2label",
        "cityscapes_label2photo",
        "facades_photo2label",
        "facades_label2photo",
        "iphone2dslr_flower",
    ):
        assert name in zoo.PRETRAINED


def test_url_pattern_and_override(monkeypatch):
    monkeypatch.delenv(zoo.BASE_URL_ENV, raising=False)
    assert (
        zoo.model_url("horse2zebra")
        == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
    )
    monkeypatch.setenv(zoo.BASE_URL_ENV, "http://127.0.0.1:9/mirror/")
    assert zoo.model_url("style_monet") == "http://127.0.0.1:9/mirror/style_monet.pth"
    with pytest.raises(KeyError, match="did you mean horse2zebra"):
        zoo.model_url("horse2zebr")


def test_cache_honours_transfigure_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFIGURE_CACHE", str(tmp_path / "c"))
    assert zoo.cached_path("horse2zebra") == tmp_path / "c/models/cyclegan/horse2zebra.safetensors"
    assert not zoo.is_cached("horse2zebra")


# ---------------------------------------------------------------------------------- import


@pytest.mark.parametrize("legacy", [True, False])
def test_reference_pth_with_stale_keys_imports_and_translates(tmp_path, legacy):
    net = reference_generator()
    pth = save_reference_pth(tmp_path / "latest_net_G_A.pth", net, legacy=legacy)
    assert any(k.endswith("running_mean") for k in torch.load(pth, weights_only=True))
    out = zoo.import_official(pth, tmp_path / "g.safetensors", direction="a2b")
    info = read_model_info(out)
    assert info.kind == "cyclegan-generator"
    assert info.config["netG"] == "resnet_9blocks" and info.config["ngf"] == 4
    assert info.extra["name"] == "latest_net_G_A" and info.extra["direction"] == "a2b"
    loaded, _ = load_model(out)
    assert set(loaded.state_dict()) == set(net.state_dict())
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    torch.testing.assert_close(translate_tensor(loaded, x), translate_tensor(net, x))


def test_reference_layout_has_the_reference_key_names():
    keys = set(reference_generator().state_dict())
    assert "model.1.weight" in keys and "model.26.bias" in keys
    assert {f"model.{i}.conv_block.{j}.weight" for i in range(10, 19) for j in (1, 5)} <= keys


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"n_blocks": 6}, {"netG": "resnet_6blocks", "norm": "instance", "use_dropout": False}),
        ({"use_dropout": True}, {"netG": "resnet_9blocks", "use_dropout": True}),
        ({"norm": "batch"}, {"norm": "batch", "use_dropout": False}),
        ({"norm": "batch", "use_dropout": True}, {"norm": "batch", "use_dropout": True}),
        ({"upsample": "resize_conv"}, {"upsample": "resize_conv"}),
    ],
)
def test_architecture_is_inferred_from_the_keys(kwargs, expected):
    net = reference_generator(ngf=8, **kwargs)
    config, state = zoo.convert_state_dict(net.state_dict())
    assert config.ngf == 8
    for key, value in expected.items():
        assert getattr(config, key) == value
    assert set(state) == set(net.state_dict())


def test_channels_are_inferred():
    net = ResnetGenerator(1, 3, ngf=4, n_blocks=6)
    config, _ = zoo.convert_state_dict(net.state_dict())
    assert (config.input_nc, config.output_nc) == (1, 3)


def test_dataparallel_prefix_and_wrapped_state_dict(tmp_path):
    net = reference_generator()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}
    torch.save(wrapped, tmp_path / "w.pth")
    loaded, config = zoo.load_official(tmp_path / "w.pth")
    assert config.ngf == 4
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(loaded(x), net(x))


def test_files_that_are_not_reference_generators_are_refused(tmp_path):
    torch.save(NLayerDiscriminator(3, 4).state_dict(), tmp_path / "d.pth")
    with pytest.raises(ModelFileError, match="d.pth: cannot place model.0.weight .* not a gen"):
        zoo.import_official(tmp_path / "d.pth", tmp_path / "d.safetensors")
    torch.save(UnetGenerator(3, 3, 5, ngf=4).state_dict(), tmp_path / "u.pth")
    with pytest.raises(ModelFileError, match="unet_128 has 14"):  # U-Nets of 7 or 8 levels only
        zoo.import_official(tmp_path / "u.pth", tmp_path / "u.safetensors")
    state = reference_generator().state_dict()
    del state["model.26.bias"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(ModelFileError, match="missing model.26.bias"):
        zoo.import_official(tmp_path / "cut.pth", tmp_path / "cut.safetensors")
    (tmp_path / "junk.pth").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ModelFileError, match="junk.pth: not a safe model file: it is damaged"):
        zoo.import_official(tmp_path / "junk.pth", tmp_path / "junk.safetensors")
    torch.save({"a": 1}, tmp_path / "odd.pth")
    with pytest.raises(ModelFileError, match="not a plain state dict"):
        zoo.import_official(tmp_path / "odd.pth", tmp_path / "odd.safetensors")
    assert not list(tmp_path.glob("*.safetensors"))  # nothing written for a refused file


def test_pickled_code_is_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelFileError) as info:
        zoo.import_official(tmp_path / "evil.pth", tmp_path / "evil.safetensors")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'evil.pth'}: not a safe model file: ")
    assert "pickled Python object (print)" in message
    # PyTorch's advice to retry with weights_only=False would run the file's code: not passed on.
    assert "weights_only" not in message and "trust" not in message
    assert "\n" not in message and "\x1b" not in message
    assert not (tmp_path / "evil.safetensors").exists()


# ---------------------------------------------------------------------------------- download


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local server with reference-format horse2zebra.pth and a broken style_monet.pth."""
    root = tmp_path / "served"
    save_reference_pth(root / "horse2zebra.pth", reference_generator(seed=3))
    (root / "style_monet.pth").write_bytes(b"<html>moved</html>")
    with LocalHTTPServer(root) as srv:
        monkeypatch.setenv(zoo.BASE_URL_ENV, srv.base_url)
        yield srv


def test_download_converts_and_caches(server):
    events = []
    path = zoo.ensure_pretrained("horse2zebra", callback=events.append)
    assert path == zoo.cached_path("horse2zebra") and zoo.is_cached("horse2zebra")
    info = read_model_info(path)
    assert info.extra["name"] == "horse2zebra"
    assert info.extra["source"] == f"{server.base_url}/horse2zebra.pth"
    assert any(e.unit == "B" and e.done for e in events)
    assert not list(zoo.models_dir().rglob("*.pth*"))  # the .pth is removed after conversion
    net, _ = load_model(path)
    expected = reference_generator(seed=3)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(net(x), expected(x))
    # A second call uses the cache: no new request.
    n = len(server.requests)
    assert zoo.ensure_pretrained("horse2zebra") == path
    assert len(server.requests) == n


def test_download_of_something_else_is_refused_and_removed(server):
    with pytest.raises(ModelFileError, match="style_monet.pth"):
        zoo.ensure_pretrained("style_monet")
    assert not zoo.is_cached("style_monet")
    assert not list(zoo.models_dir().rglob("style_monet*"))


def _assert_names_both_ways_forward(message: str, name: str) -> None:
    assert message.startswith(f"could not download the pretrained model {name} (")
    assert f"transfigure models import {name}.pth" in message
    assert f"${zoo.BASE_URL_ENV}" in message


def test_download_404_is_a_download_error(server):
    with pytest.raises(DownloadError, match="404") as info:
        zoo.ensure_pretrained("zebra2horse")
    _assert_names_both_ways_forward(str(info.value), "zebra2horse")
    assert f"{zoo.BASE_URL_ENV} is {server.base_url}" in str(info.value)  # the mirror in use
    assert list(cache_dir().iterdir()) == []  # no empty cache folders left behind


def _unreachable_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago, and now has no listener
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/models"


def test_offline_names_the_ways_forward_and_leaves_no_folders(monkeypatch):
    monkeypatch.setattr(zoo, "DEFAULT_BASE_URL", _unreachable_url())  # as if offline
    monkeypatch.delenv(zoo.BASE_URL_ENV, raising=False)
    with pytest.raises(DownloadError) as info:
        zoo.ensure_pretrained("horse2zebra", timeout=5)
    message = str(info.value)
    _assert_names_both_ways_forward(message, "horse2zebra")
    assert "refused" in message and f"set ${zoo.BASE_URL_ENV} to a mirror" in message
    assert list(cache_dir().iterdir()) == []


def test_translator_downloads_a_named_model_on_first_use(server):
    net, info = load_translator("horse2zebra")
    assert info.kind == "cyclegan-generator" and zoo.is_cached("horse2zebra")
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)


# ---------------------------------------------------------------------------------- CLI


def test_cli_models_list_shows_names_and_cache_state(runner, server):
    result = runner.invoke(main, ["models", "list"])
    assert result.exit_code == 0
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == zoo.pretrained_names()
    assert all(line[1] == "-" for line in lines)
    zoo.ensure_pretrained("horse2zebra")
    lines = [
        line.split("\t") for line in runner.invoke(main, ["models", "list"]).stdout.splitlines()
    ]
    status = {line[0]: line[1] for line in lines}
    assert status["horse2zebra"] == str(zoo.cached_path("horse2zebra"))
    assert status["zebra2horse"] == "-"


def test_cli_models_download(runner, server):
    result = runner.invoke(main, ["--quiet", "models", "download", "horse2zebra"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(zoo.cached_path("horse2zebra"))
    result = runner.invoke(main, ["models", "download", "horse2zebro"])
    assert result.exit_code == 2 and "did you mean horse2zebra" in result.stderr
    result = runner.invoke(main, ["models", "download", "zebra2horse"])
    assert result.exit_code == 1 and "404" in result.stderr
    assert "transfigure models import zebra2horse.pth" in " ".join(result.stderr.split())


def test_cli_translate_offline_says_what_to_do(runner, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.BASE_URL_ENV, _unreachable_url())
    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    result = runner.invoke(
        main, ["translate", "horse2zebra", str(photo), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1, result.output
    stderr = " ".join(result.stderr.split())
    assert "could not download the pretrained model horse2zebra" in stderr
    assert "transfigure models import horse2zebra.pth" in stderr
    assert f"${zoo.BASE_URL_ENV}" in stderr and "Traceback" not in stderr
    assert list(cache_dir().iterdir()) == []


def test_cli_models_import(runner, tmp_path):
    pth = save_reference_pth(tmp_path / "latest_net_G_B.pth", reference_generator())
    result = runner.invoke(main, ["models", "import", str(pth), "--direction", "b2a"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "latest_net_G_B.safetensors"
    assert result.stdout.strip() == str(out)
    assert read_model_info(out).extra["direction"] == "b2a"
    # Readable like any other output (the umask's mode), not safetensors' own 0600.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert oct(stat.S_IMODE(out.stat().st_mode)) == oct(stat.S_IMODE(plain.stat().st_mode))
    result = runner.invoke(main, ["models", "import", str(pth)])
    assert result.exit_code == 1 and "exists" in result.stderr
    result = runner.invoke(
        main, ["models", "import", str(pth), "-o", str(tmp_path / "x.safetensors"), "--name", "h2z"]
    )
    assert result.exit_code == 0
    assert read_model_info(tmp_path / "x.safetensors").extra["name"] == "h2z"
    (tmp_path / "bad.pth").write_bytes(b"nope")
    result = runner.invoke(main, ["models", "import", str(tmp_path / "bad.pth")])
    assert result.exit_code == 1 and "bad.pth" in result.stderr


def test_cli_translate_with_a_pretrained_name(runner, server, tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 12), (200, 30, 30)).save(tmp_path / "red.png")
    result = runner.invoke(
        main,
        [
            "--quiet",
            "translate",
            "horse2zebra",
            str(tmp_path / "red.png"),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o" / "red.png") as img:
        assert img.size == (20, 12)
