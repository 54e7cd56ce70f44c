"""Model files (.safetensors + metadata) and training state (torch.save, weights_only load)."""

from __future__ import annotations

import json
import random
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import transfigure
from transfigure import runtime
from transfigure.checkpoint import (
    ModelFileError,
    ModelInfo,
    config_from_dict,
    load_model,
    load_training_state,
    model_kinds,
    read_model_info,
    register_model,
    save_model,
    save_training_state,
)

# --- a test-only model kind ------------------------------------------------------------------


@dataclass
class TinyConfig:
    in_features: int = 3
    hidden: int = 5
    out_features: int = 2
    sizes: tuple[int, ...] = (1, 2)
    tied: bool = False


class TinyNet(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.norm = nn.BatchNorm1d(config.hidden)  # buffers (running stats) must round-trip too
        self.fc2 = nn.Linear(config.hidden, config.out_features, bias=False)
        if config.tied:
            # A second module sharing the same Parameter: two state_dict keys, one storage.
            self.fc2_alias = self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


@dataclass
class OtherConfig:
    width: int = 4


register_model("test-tiny", TinyConfig, TinyNet)
register_model("test-other", OtherConfig, lambda c: nn.Linear(c.width, c.width))


def _trained_tiny(config: TinyConfig | None = None, seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    net = TinyNet(config or TinyConfig())
    # Move the BatchNorm running statistics away from their initial values.
    net.train()
    for _ in range(3):
        net(torch.randn(8, net.config.in_features))
    return net.eval()


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_kinds_and_rejects_conflicts() -> None:
    assert {"test-tiny", "test-other"} <= set(model_kinds())
    assert model_kinds() == sorted(model_kinds())
    register_model("test-tiny", TinyConfig, TinyNet)  # same class again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-tiny", OtherConfig, TinyNet)
    with pytest.raises(TypeError, match="dataclass"):
        register_model("test-bad", dict, TinyNet)


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    net = _trained_tiny(TinyConfig(hidden=7, sizes=(3, 4)))
    path = save_model(
        net,
        tmp_path / "sub" / "tiny.safetensors",
        kind="test-tiny",
        config=net.config,
        extra={"direction": "a2b", "labels": ["x", "y"]},
    )
    assert path == tmp_path / "sub" / "tiny.safetensors"
    assert path.is_file()

    loaded, info = load_model(path, kind="test-tiny")
    assert isinstance(loaded, TinyNet)
    assert not loaded.training
    assert loaded.config == TinyConfig(hidden=7, sizes=(3, 4))
    assert isinstance(loaded.config.sizes, tuple)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    assert info.extra == {"direction": "a2b", "labels": ["x", "y"]}


def test_model_info_fields(tmp_path: Path) -> None:
    net = _trained_tiny()
    path = save_model(net, tmp_path / "m.safetensors", kind="test-tiny", config=net.config)
    info = read_model_info(path)
    assert isinstance(info, ModelInfo)
    assert info.path == path
    assert info.kind == "test-tiny"
    assert info.config == {
        "in_features": 3,
        "hidden": 5,
        "out_features": 2,
        "sizes": [1, 2],
        "tied": False,
    }
    assert info.version == transfigure.__version__
    assert info.extra == {}
    assert info.config_class.endswith("TinyConfig")


def test_load_accepts_a_list_of_kinds_and_a_device(tmp_path: Path) -> None:
    net = _trained_tiny()
    path = save_model(net, tmp_path / "m.safetensors", kind="test-tiny", config=net.config)
    loaded, info = load_model(path, kind=["test-other", "test-tiny"], device=torch.device("cpu"))
    assert info.kind == "test-tiny"
    assert next(loaded.parameters()).device == torch.device("cpu")
    loaded_any, _ = load_model(path)  # kind=None: whatever the file holds
    assert isinstance(loaded_any, TinyNet)


def test_tensors_sharing_storage_are_saved(tmp_path: Path) -> None:
    net = _trained_tiny(TinyConfig(tied=True))
    keys = net.state_dict().keys()
    assert "fc2.weight" in keys and "fc2_alias.weight" in keys  # the test's premise
    path = save_model(net, tmp_path / "tied.safetensors", kind="test-tiny", config=net.config)
    loaded, _ = load_model(path, kind="test-tiny")
    x = torch.randn(4, 3)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_non_contiguous_tensors_are_saved(tmp_path: Path) -> None:
    net = _trained_tiny()
    # A transposed (non-contiguous) parameter of the original's shape (2, 5).
    net.fc2.weight = nn.Parameter(torch.randn(5, 2).t())
    assert not net.fc2.weight.is_contiguous()
    path = save_model(net, tmp_path / "nc.safetensors", kind="test-tiny", config=net.config)
    loaded, _ = load_model(path, kind="test-tiny")
    torch.testing.assert_close(loaded.fc2.weight, net.fc2.weight, rtol=0, atol=0)


def test_save_refuses_unregistered_kind_and_wrong_config(tmp_path: Path) -> None:
    net = _trained_tiny()
    with pytest.raises(ValueError, match="unknown model kind 'nope'"):
        save_model(net, tmp_path / "m.safetensors", kind="nope", config=net.config)
    with pytest.raises(ValueError, match="must be a TinyConfig"):
        save_model(net, tmp_path / "m.safetensors", kind="test-tiny", config=OtherConfig())
    assert list(tmp_path.iterdir()) == []


# --- errors -----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(ModelFileError, match="no such file") as info:
        load_model(path)
    assert str(path) in str(info.value)
    with pytest.raises(ModelFileError, match="no such file"):
        read_model_info(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",  # empty
        b"this is not a safetensors file at all, just some text\n" * 4,  # garbage text
        bytes(range(256)) * 8,  # garbage bytes
        struct.pack("<Q", 10_000) + b"{",  # header length larger than the file
    ],
    ids=["empty", "text", "bytes", "bad-header"],
)
def test_not_a_safetensors_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a readable safetensors file") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    net = _trained_tiny()
    path = save_model(net, tmp_path / "m.safetensors", kind="test-tiny", config=net.config)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut into the tensor data
    with pytest.raises(ModelFileError, match=r"corrupt or truncated") as info:
        load_model(path, kind="test-tiny")
    assert str(path) in str(info.value)


def test_missing_transfigure_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))  # a valid safetensors file, no metadata
    with pytest.raises(ModelFileError, match="no transfigure metadata"):
        read_model_info(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="no transfigure metadata"):
        load_model(path)


def _write_with_metadata(path: Path, tensors: dict, **overrides: str) -> Path:
    metadata = {
        "transfigure.kind": "test-tiny",
        "transfigure.config": json.dumps({}),
        "transfigure.config_class": "tests.test_checkpoint.TinyConfig",
        "transfigure.version": "9.9.9",
        "transfigure.extra": "{}",
    }
    metadata.update(overrides)
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_unknown_kind(tmp_path: Path) -> None:
    path = _write_with_metadata(
        tmp_path / "u.safetensors", {"w": torch.zeros(1)}, **{"transfigure.kind": "martian-gan"}
    )
    with pytest.raises(ModelFileError, match="unknown model kind 'martian-gan'") as info:
        load_model(path)
    assert "test-tiny" in str(info.value)  # lists the known kinds
    assert "9.9.9" in str(info.value)


def test_unknown_kind_never_imports_modules_outside_the_package(tmp_path: Path) -> None:
    # The config class names a module; only transfigure.* modules may ever be imported from it.
    path = _write_with_metadata(
        tmp_path / "u.safetensors",
        {"w": torch.zeros(1)},
        **{"transfigure.kind": "evil-kind", "transfigure.config_class": "os.system"},
    )
    with pytest.raises(ModelFileError, match="unknown model kind 'evil-kind'"):
        load_model(path)


def test_wrong_kind_names_expected_and_found(tmp_path: Path) -> None:
    net = _trained_tiny()
    path = save_model(net, tmp_path / "m.safetensors", kind="test-tiny", config=net.config)
    with pytest.raises(ModelFileError) as info:
        load_model(path, kind="test-other")
    message = str(info.value)
    assert str(path) in message
    assert "'test-tiny'" in message and "'test-other'" in message
    with pytest.raises(ModelFileError, match="expected 'a' or 'b'"):
        load_model(path, kind=("a", "b"))


def test_config_that_does_not_fit(tmp_path: Path) -> None:
    net = _trained_tiny()
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    path = _write_with_metadata(
        tmp_path / "c.safetensors",
        tensors,
        **{"transfigure.config": json.dumps({"hidden": 5, "n_heads": 8})},
    )
    with pytest.raises(ModelFileError, match="unknown key.*'n_heads'") as info:
        load_model(path, kind="test-tiny")
    assert str(path) in str(info.value)


def test_damaged_metadata_json(tmp_path: Path) -> None:
    path = _write_with_metadata(
        tmp_path / "d.safetensors", {"w": torch.zeros(1)}, **{"transfigure.config": "{not json"}
    )
    with pytest.raises(ModelFileError, match="damaged transfigure metadata"):
        read_model_info(path)


def test_state_dict_mismatch(tmp_path: Path) -> None:
    net = _trained_tiny()
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    # Shape mismatch: the stored config says hidden=5 but fc1 is stored 6 wide.
    bad = dict(tensors)
    bad["fc1.weight"] = torch.zeros(6, 3)
    path = _write_with_metadata(
        tmp_path / "shape.safetensors", bad, **{"transfigure.config": json.dumps({"hidden": 5})}
    )
    with pytest.raises(ModelFileError, match=r"shape mismatch fc1\.weight \(file \(6, 3\)"):
        load_model(path)

    missing = {k: v for k, v in tensors.items() if k != "fc2.weight"}
    missing["stray.weight"] = torch.zeros(1)
    path = _write_with_metadata(tmp_path / "keys.safetensors", missing)
    with pytest.raises(ModelFileError, match="missing fc2.weight; unexpected stray.weight"):
        load_model(path)


def test_config_from_dict() -> None:
    assert config_from_dict(TinyConfig, {}) == TinyConfig()  # missing keys: defaults
    config = config_from_dict(TinyConfig, {"hidden": 9, "sizes": [5, 6, 7]})
    assert config == TinyConfig(hidden=9, sizes=(5, 6, 7))
    with pytest.raises(ModelFileError, match="unknown key.*'bogus'"):
        config_from_dict(TinyConfig, {"bogus": 1})
    with pytest.raises(ModelFileError, match="JSON object"):
        config_from_dict(TinyConfig, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a dataclass"):
        config_from_dict(dict, {})


@dataclass
class _Inner:
    a: int = 1


@dataclass
class _Outer:
    inner: _Inner = field(default_factory=_Inner)
    maybe: tuple[int, int] | None = None


def test_config_from_dict_nested_and_optional() -> None:
    config = config_from_dict(_Outer, {"inner": {"a": 3}, "maybe": [1, 2]})
    assert config == _Outer(inner=_Inner(a=3), maybe=(1, 2))
    with pytest.raises(ModelFileError, match="unknown key.*'b'"):
        config_from_dict(_Outer, {"inner": {"b": 3}})


# --- atomic writes ----------------------------------------------------------------------------


def test_failed_save_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transfigure.checkpoint as checkpoint

    net = _trained_tiny()
    target = tmp_path / "m.safetensors"
    save_model(net, target, kind="test-tiny", config=net.config)
    before = target.read_bytes()

    def broken_save_file(tensors, filename, metadata=None):  # noqa: ANN001
        Path(filename).write_bytes(b"half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", broken_save_file)
    with pytest.raises(KeyboardInterrupt):
        save_model(net, target, kind="test-tiny", config=net.config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert target.read_bytes() == before  # the previous file is intact

    def broken_torch_save(obj, f):  # noqa: ANN001
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_torch_save)
    with pytest.raises(OSError, match="disk full"):
        save_training_state(tmp_path / "state.pt", {"step": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_model_file_has_the_umask_permissions(tmp_path: Path) -> None:
    # safetensors creates its files 0600; a model file must be readable like every other output.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = stat.S_IMODE(plain.stat().st_mode)  # what the umask gives any new file
    if expected == 0o600:
        pytest.skip("this umask (077) gives every file 0600: nothing to tell apart")
    net = _trained_tiny()
    path = save_model(
        net, tmp_path / "exports" / "m.safetensors", kind="test-tiny", config=net.config
    )
    assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(expected)


# --- training state ---------------------------------------------------------------------------


def test_training_state_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TinyNet(TinyConfig())
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 - epoch / 10)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(4, 3)).square().mean().backward()
        optimizer.step()
        scheduler.step()

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    rng = runtime.get_rng_state()
    state = {
        "epoch": 3,
        "step": 12,
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,
        "history": [0.5, 0.25],
        "name": "run",
    }
    path = save_training_state(tmp_path / "checkpoints" / "latest.pt", state)
    expected = (random.random(), np.random.rand(), torch.rand(1))

    # The function must use weights_only=True: an object needing unpickling code is refused.
    loaded = load_training_state(path)
    assert loaded["epoch"] == 3 and loaded["step"] == 12
    assert loaded["history"] == [0.5, 0.25] and loaded["name"] == "run"
    torch.testing.assert_close(loaded["model"], net.state_dict(), rtol=0, atol=0)

    # Optimizer and scheduler restore into fresh objects and continue identically.
    net2 = TinyNet(TinyConfig())
    net2.load_state_dict(loaded["model"])
    # As a resuming loop does: build both, then load both.
    optimizer2 = torch.optim.Adam(net2.parameters(), lr=2e-4, betas=(0.5, 0.999))
    scheduler2 = torch.optim.lr_scheduler.LambdaLR(optimizer2, lambda epoch: 1.0 - epoch / 10)
    optimizer2.load_state_dict(loaded["optimizer"])
    scheduler2.load_state_dict(loaded["scheduler"])
    assert scheduler2.last_epoch == 3
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.7)
    torch.testing.assert_close(
        optimizer2.state_dict()["state"], optimizer.state_dict()["state"], rtol=0, atol=0
    )

    x = torch.randn(4, 3)
    for model, opt, sched in ((net, optimizer, scheduler), (net2, optimizer2, scheduler2)):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        sched.step()
    torch.testing.assert_close(net2.state_dict(), net.state_dict(), rtol=0, atol=0)

    runtime.set_rng_state(loaded["rng"])
    got = (random.random(), np.random.rand(), torch.rand(1))
    assert got[0] == expected[0] and got[1] == expected[1]
    torch.testing.assert_close(got[2], expected[2], rtol=0, atol=0)


def test_training_state_is_loaded_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    # A plain torch.save of an arbitrary Python object: fine for pickle, refused by weights_only.
    torch.save({"obj": ModelInfo(path=path, kind="k", config={}, version="0")}, path)
    with pytest.raises(ModelFileError, match="cannot read training state") as info:
        load_training_state(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "not a safe model file" in message and "transfigure.checkpoint.ModelInfo" in message
    # PyTorch's advice to retry with weights_only=False would run the file's code: not passed on.
    assert "weights_only" not in message and "\n" not in message


def test_load_weights_only_refuses_pickled_objects(tmp_path: Path) -> None:
    from transfigure.checkpoint import load_weights_only

    weights = tmp_path / "weights.pth"
    torch.save({"w": torch.arange(3.0)}, weights)
    torch.testing.assert_close(load_weights_only(weights)["w"], torch.arange(3.0))
    pickled = tmp_path / "pickled.pth"
    torch.save({"w": ModelInfo(path=pickled, kind="k", config={}, version="0")}, pickled)
    with pytest.raises(ModelFileError, match=r"pickled\.pth: not a safe model file"):
        load_weights_only(pickled)
    with pytest.raises(ModelFileError, match="absent.pth: no such file"):
        load_weights_only(tmp_path / "absent.pth")


def test_training_state_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        load_training_state(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 definitely not a checkpoint")
    with pytest.raises(ModelFileError, match="cannot read training state") as info:
        load_training_state(garbage)
    assert str(garbage) in str(info.value)

    good = save_training_state(tmp_path / "good.pt", {"w": torch.arange(1000.0)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:-300])
    with pytest.raises(ModelFileError, match="cannot read training state"):
        load_training_state(truncated)

    not_dict = tmp_path / "list.pt"
    torch.save([1, 2], not_dict)
    with pytest.raises(ModelFileError, match="must be a dict"):
        load_training_state(not_dict)


def test_built_in_kinds_come_from_the_registry_on_first_use(tmp_path: Path) -> None:
    """A fresh process loads a GAN generator file without importing transfigure.gan first, and
    a file's metadata never chooses what gets imported."""
    import subprocess
    import sys

    from transfigure.gan.networks import Generator, GeneratorConfig

    g = Generator(GeneratorConfig(image_size=16, width=4, latent_dim=8))
    save_model(g, tmp_path / "g.safetensors", kind="gan-generator", config=g.config)
    code = f"""
import sys
from transfigure.checkpoint import load_model, ModelFileError
assert not any(m.startswith("transfigure.gan") for m in sys.modules)
net, info = load_model({str(tmp_path / "g.safetensors")!r})
print(type(net).__module__, info.kind)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["transfigure.gan.networks", "gan-generator"]

    tensors = {k: v.clone() for k, v in _trained_tiny().state_dict().items()}
    path = _write_with_metadata(
        tmp_path / "odd.safetensors",
        tensors,
        **{
            "transfigure.kind": "not-a-kind",
            "transfigure.config_class": "transfigure.some_subsystem.networks.TinyConfig",
        },
    )
    with pytest.raises(ModelFileError, match="unknown model kind 'not-a-kind'"):
        load_model(path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_round_trip_on_cuda(tmp_path: Path) -> None:
    net = _trained_tiny(TinyConfig(tied=True)).cuda()
    path = save_model(net, tmp_path / "cuda.safetensors", kind="test-tiny", config=net.config)
    loaded, _ = load_model(path, kind="test-tiny", device="cuda")
    assert next(loaded.parameters()).is_cuda
    x = torch.randn(4, 3, device="cuda")
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
