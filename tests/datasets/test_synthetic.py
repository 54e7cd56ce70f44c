"""Procedural datasets: determinism, shapes that are what they claim, seasons that differ."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from transfigure.datasets import LabelledFolderDataset, UnpairedDataset
from transfigure.datasets.synthetic import (
    SHAPE_CLASSES,
    seasons,
    shapes,
    write_seasons,
    write_shapes,
)

# ------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_shapes_dtypes_and_balance(channels):
    images, labels = shapes(42, size=24, seed=3, channels=channels)
    assert images.shape == (42, 24, 24, channels) and images.dtype == np.uint8
    assert labels.shape == (42,) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=len(SHAPE_CLASSES))
    assert counts.tolist() == [11, 11, 10, 10]
    assert SHAPE_CLASSES == ("circle", "square", "triangle", "cross")


def test_shapes_deterministic_and_seed_dependent():
    a, la = shapes(16, seed=7)
    b, lb = shapes(16, seed=7)
    c, lc = shapes(16, seed=8)
    assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert a.tobytes() != c.tobytes()


def _foreground(image: np.ndarray) -> np.ndarray:
    """Pixels far from the background colour (the median of the border)."""
    img = image.astype(np.float32)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg = np.median(border, axis=0)
    return np.abs(img - bg).max(-1) > 45  # shape/background differ by >= 80 per channel


def _half_turn_iou(mask: np.ndarray) -> float:
    """IoU of a mask with itself turned 180° about its centroid."""
    ys, xs = np.nonzero(mask)
    two_cy, two_cx = int(round(2 * ys.mean())), int(round(2 * xs.mean()))  # half-pixel centre
    turned = np.zeros_like(mask)
    ty, tx = two_cy - ys, two_cx - xs
    ok = (ty >= 0) & (ty < mask.shape[0]) & (tx >= 0) & (tx < mask.shape[1])
    turned[ty[ok], tx[ok]] = True
    return (mask & turned).sum() / (mask | turned).sum()


def test_shapes_are_what_their_labels_say():
    images, labels = shapes(48, size=64, seed=1)
    for image, label in zip(images, labels, strict=True):
        mask = _foreground(image)
        # the whole shape lies inside the picture, well clear of the border
        assert not mask[0].any() and not mask[-1].any()
        assert not mask[:, 0].any() and not mask[:, -1].any()
        area = mask.mean()
        assert 0.04 < area < 0.4
        iou = _half_turn_iou(mask)
        # circles, squares and crosses are symmetric under a half turn; triangles are not
        # (a triangle overlaps its half turn in a hexagon: IoU 0.5)
        if SHAPE_CLASSES[label] == "triangle":
            assert iou < 0.7
        else:
            assert iou > 0.85


def test_shape_colour_says_nothing_about_the_label():
    images, labels = shapes(800, size=16, seed=0)
    features = images.reshape(len(images), -1, 3).mean(1)
    train, test = slice(0, 600), slice(600, None)
    centroids = np.stack([features[train][labels[train] == k].mean(0) for k in range(4)])
    dist = ((features[test][:, None] - centroids[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == labels[test]).mean()
    assert accuracy < 0.4  # chance is 0.25


def test_write_shapes_round_trips_through_labelled_dataset(tmp_path):
    root = write_shapes(tmp_path / "shapes", 3, size=16, seed=2)
    images, labels = shapes(12, size=16, seed=2)
    assert sorted(p.name for p in root.iterdir()) == sorted(SHAPE_CLASSES)
    for k, name in enumerate(SHAPE_CLASSES):
        files = sorted((root / name).glob("*.png"))
        assert len(files) == 3
        for file, expected in zip(files, images[labels == k], strict=True):
            np.testing.assert_array_equal(np.asarray(Image.open(file)), expected)
    ds = LabelledFolderDataset(root)
    assert ds.classes == sorted(SHAPE_CLASSES)
    assert len(ds) == 12


def test_shapes_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        shapes(2, channels=2)
    with pytest.raises(ValueError, match="size"):
        shapes(2, size=4)
    with pytest.raises(ValueError, match="non-negative"):
        shapes(-1)


# ------------------------------------------------------------------------------- seasons


def test_seasons_shapes_and_determinism():
    a = seasons(6, season="winter", size=32, seed=4)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert a.tobytes() == seasons(6, season="winter", size=32, seed=4).tobytes()
    assert a.tobytes() != seasons(6, season="winter", size=32, seed=5).tobytes()
    # images within a batch differ from each other
    assert len({im.tobytes() for im in a}) == 6


def test_summer_and_winter_differ_in_the_expected_direction():
    summer = seasons(24, season="summer", size=64, seed=0).astype(np.float64)
    winter = seasons(24, season="winter", size=64, seed=0).astype(np.float64)
    ground_s, ground_w = summer[:, 44:], winter[:, 44:]  # lower third: mostly ground
    sky_s, sky_w = summer[:, :12], winter[:, :12]  # top fifth: sky

    def greenness(x):
        return (x[..., 1] - (x[..., 0] + x[..., 2]) / 2).mean()

    def blueness(x):
        return (x[..., 2] - x[..., 0]).mean()

    assert ground_w.mean() - ground_s.mean() > 80  # snow is bright, grass is not
    assert greenness(ground_s) - greenness(ground_w) > 40  # grass is green
    assert blueness(sky_s) - blueness(sky_w) > 40  # summer sky is blue, winter's grey
    saturation_s = np.ptp(summer, axis=-1).mean()
    saturation_w = np.ptp(winter, axis=-1).mean()
    assert saturation_s > 2 * saturation_w  # winter is washed out


def _edges(x: np.ndarray) -> np.ndarray:
    lum = x.astype(np.float32).mean(-1)
    return np.abs(np.diff(lum, axis=0))[:, :-1] + np.abs(np.diff(lum, axis=1))[:-1, :]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_same_seed_gives_the_same_scenes_in_both_seasons():
    summer = seasons(8, season="summer", size=64, seed=2)
    winter = seasons(8, season="winter", size=64, seed=2)
    other = seasons(8, season="winter", size=64, seed=3)
    same = [_corr(_edges(s), _edges(w)) for s, w in zip(summer, winter, strict=True)]
    different = [_corr(_edges(s), _edges(w)) for s, w in zip(summer, other, strict=True)]
    assert min(same) > 0.2
    assert np.mean(same) > np.mean(different) + 0.15


def test_summer_trees_stand_out_from_the_meadow():
    # Where the winter scene is dark below the horizon (trunks, bare crowns, conifers), the
    # summer scene shows the same trees: they must be much darker than the meadow around them,
    # as the winter trees are against the snow, or a translator cannot tell where they are.
    summer = seasons(32, season="summer", size=128, seed=3).astype(np.float64)
    winter = seasons(32, season="winter", size=128, seed=3).astype(np.float64)
    weights = np.array([0.299, 0.587, 0.114])
    lum_s, lum_w = summer[:, 58:] @ weights, winter[:, 58:] @ weights  # below the sky
    tree = lum_w < 140
    assert 0.02 < tree.mean() < 0.1
    gaps = [
        lum_s[i][~tree[i]].mean() - lum_s[i][tree[i]].mean()
        for i in range(len(summer))
        if tree[i].sum() > 20
    ]
    assert len(gaps) > 20 and min(gaps) > 50  # measured: 69 (17 with grass-green crowns)


def test_seasons_are_fast():
    start = time.process_time()  # CPU time of this process: not skewed by other users
    images = seasons(200, season="summer", size=64, seed=0)
    elapsed = time.process_time() - start
    assert images.shape == (200, 64, 64, 3)
    assert elapsed < 2.0


def test_write_seasons_layout(tmp_path):
    root = write_seasons(tmp_path / "seasons", 5, 3, size=32, seed=1)
    counts = {d.name: len(list(d.glob("*.png"))) for d in sorted(root.iterdir())}
    assert counts == {"testA": 3, "testB": 3, "trainA": 5, "trainB": 5}
    ds = UnpairedDataset(root / "trainA", root / "trainB")
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    # test pairs show the same scene: more alike in structure than mismatched pairs
    a = [np.asarray(Image.open(root / "testA" / f"{i:05d}.png")) for i in range(3)]
    b = [np.asarray(Image.open(root / "testB" / f"{i:05d}.png")) for i in range(3)]
    assert _corr(_edges(a[0]), _edges(b[0])) > _corr(_edges(a[0]), _edges(b[1]))
    # training domains are unpaired: different layouts
    ta = np.asarray(Image.open(root / "trainA" / "00000.png"))
    tb = np.asarray(Image.open(root / "trainB" / "00000.png"))
    assert _corr(_edges(ta), _edges(tb)) < _corr(_edges(a[0]), _edges(b[0]))
    # summer files are greener than winter files
    assert ta[..., 1].mean() - ta[..., 0].mean() > tb[..., 1].mean() - tb[..., 0].mean()


def test_write_seasons_jpeg(tmp_path):
    root = write_seasons(tmp_path, 2, 1, size=16, seed=0, format="jpg")
    files = sorted(p.name for p in (root / "trainB").iterdir())
    assert files == ["00000.jpg", "00001.jpg"]
    with Image.open(root / "trainB" / "00000.jpg") as im:
        assert im.format == "JPEG" and im.size == (16, 16)
    with pytest.raises(ValueError, match="format"):
        write_seasons(tmp_path, 1, 1, format="gif")


def test_seasons_bad_arguments():
    with pytest.raises(ValueError, match="season"):
        seasons(2, season="autumn")
    with pytest.raises(ValueError, match="size"):
        seasons(2, size=8)
