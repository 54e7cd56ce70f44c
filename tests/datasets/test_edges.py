"""The offline edges → scenes pairs for pix2pix checks."""

from __future__ import annotations

import numpy as np
import pytest

from transfigure.datasets.aligned import AlignedDataset
from transfigure.datasets.edges import canny_edges, edges2scenes, write_edges2scenes


def test_canny_marks_a_step_and_nothing_on_flat_areas():
    image = np.zeros((1, 16, 16, 3), np.uint8)
    image[:, :, 8:] = 255  # a vertical step between columns 7 and 8
    edges = canny_edges(image)
    assert edges.shape == (1, 16, 16, 3) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    dark_columns = set(np.nonzero((edges[0, 4:12, :, 0] == 0).any(0))[0].tolist())
    assert dark_columns and dark_columns <= {7, 8}
    assert (edges[0, :, :5] == 255).all() and (edges[0, :, 11:] == 255).all()
    with pytest.raises(ValueError, match="uint8"):
        canny_edges(image.astype(np.float32))


def test_pairs_are_aligned_and_deterministic():
    edges, scenes = edges2scenes(3, size=32, seed=4)
    again, _ = edges2scenes(3, size=32, seed=4)
    np.testing.assert_array_equal(edges, again)
    assert edges.shape == scenes.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(edges, canny_edges(scenes))
    assert 0.02 < (edges == 0).mean() < 0.5  # some edges, mostly white


def test_written_layout_reads_as_pairs(tmp_path):
    root = write_edges2scenes(tmp_path / "e2s", 4, 2, size=16, seed=1)
    assert sorted(p.name for p in (root / "train").iterdir())[0] == "00000.png"
    train = AlignedDataset(root / "train")
    test = AlignedDataset(root / "test")
    assert (len(train), len(test)) == (4, 2)
    item = train[0]
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    edges, scenes = edges2scenes(
        4, size=16, seed=int(np.random.SeedSequence(1).generate_state(2)[0])
    )
    np.testing.assert_allclose(
        item["B"].numpy(), scenes[0].transpose(2, 0, 1) / 127.5 - 1, atol=1e-6
    )
