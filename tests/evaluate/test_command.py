"""``transfigure evaluate`` through Click's test runner."""

from __future__ import annotations

import json
import urllib.error

from tests.evaluate.conftest import SIZE
from transfigure.cli import main

VGG = ["--features", "vgg19", "--size", str(SIZE), "--kid-subsets", "10"]


def test_json_scores_and_probe(runner, seasons_root):
    root = seasons_root
    result = runner.invoke(
        main,
        ["evaluate", str(root / "testB"), str(root / "testA"), *VGG, "--json"]
        + ["--probe", str(root / "trainA"), str(root / "trainB")],
    )
    assert result.exit_code == 0, result.output + result.stderr
    payload = json.loads(result.stdout)  # stdout carries only the JSON
    scores, probe = payload["scores"], payload["probe"]
    assert scores["fid_name"] == "FID-VGG19 (not comparable to Inception FID)"
    assert (scores["n_real"], scores["n_fake"], scores["size"]) == (12, 12, SIZE)
    assert scores["fid"] > 100 and scores["kid_subset_size"] == 12
    # testA is untranslated summer: the probe says none of it reached winter.
    assert probe["fraction_target"] == 0.0 and probe["n_translated"] == 12
    assert payload["report"] is None and payload["skipped"] == []
    assert "FID-VGG19" not in result.stderr  # no table beside the JSON


def test_table_goes_to_stdout_and_progress_to_stderr(runner, seasons_root):
    root = seasons_root
    result = runner.invoke(main, ["evaluate", str(root / "testB"), str(root / "testA"), *VGG])
    assert result.exit_code == 0, result.output + result.stderr
    # The table states the size the images were resized to.
    assert "FID-VGG19" in result.stdout and f"resized to {SIZE}×{SIZE}" in result.stdout
    assert "FID-VGG19" not in result.stderr and "features real" in result.stderr


def test_rerun_reuses_the_feature_cache(runner, seasons_root, monkeypatch, tmp_path):
    import transfigure.evaluate.features as features

    monkeypatch.setenv("TRANSFIGURE_CACHE", str(tmp_path / "cache"))
    root = seasons_root
    args = ["evaluate", str(root / "testB"), str(root / "testA"), *VGG, "--json"]
    args += ["--probe", str(root / "trainA"), str(root / "trainB"), "--probe-size", "10"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.stderr
    assert len(list((tmp_path / "cache" / "features").rglob("*.npy"))) == 12 + 12 + 10 + 10
    decoded: list = []
    real_load_batch = features.load_batch
    monkeypatch.setattr(
        features,
        "load_batch",
        lambda paths, size: decoded.extend(paths) or real_load_batch(paths, size),
    )
    second = runner.invoke(main, args)
    assert second.exit_code == 0, second.stderr
    assert decoded == []  # every feature came from the cache
    assert json.loads(second.stdout) == json.loads(first.stdout)
    third = runner.invoke(main, [*args, "--no-cache"])
    assert third.exit_code == 0 and len(decoded) == 12 + 12 + 10 + 10
    assert json.loads(third.stdout)["probe"]["n_a"] == 10


def test_report_page_and_path_on_stdout(runner, seasons_root, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(
        main,
        ["evaluate", str(seasons_root / "testB"), str(seasons_root / "testB"), *VGG]
        + ["--report", str(out)],
    )
    assert result.exit_code == 0, result.output + result.stderr
    page = out / "index.html"
    assert result.stdout.splitlines()[-1] == str(page)  # after the table
    text = page.read_text()
    assert "FID-VGG19 (not comparable to Inception FID)" in text
    assert len(list((out / "real").glob("*.png"))) == 8
    assert 'src="real/00.png"' in text and 'src="fake/07.png"' in text


def test_bad_file_is_named_and_exit_code_is_1(runner, seasons_root, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    for source in sorted((seasons_root / "testA").glob("*.png"))[:4]:
        (fake / source.name).write_bytes(source.read_bytes())
    (fake / "zz_broken.png").write_bytes(b"\x89PNG truncated")
    result = runner.invoke(main, ["evaluate", str(seasons_root / "testB"), str(fake), *VGG])
    assert result.exit_code == 1
    assert "zz_broken.png" in result.stderr and "1 input(s) failed" in result.stderr
    assert "fake 4" in result.stdout  # the scores were still computed on the good files


def test_inception_size_is_a_usage_error(runner, seasons_root):
    result = runner.invoke(
        main, ["evaluate", str(seasons_root / "testA"), str(seasons_root / "testB"), "--size", "64"]
    )
    assert result.exit_code == 2
    assert "299" in result.stderr


def test_missing_folder_is_a_usage_error(runner, seasons_root, tmp_path):
    result = runner.invoke(main, ["evaluate", str(tmp_path / "nope"), str(seasons_root / "testB")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_inception_offline_is_a_clear_error(runner, seasons_root, monkeypatch, tmp_path):
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    result = runner.invoke(
        main, ["evaluate", str(seasons_root / "testA"), str(seasons_root / "testB")]
    )
    assert result.exit_code == 1
    assert "--features vgg19" in result.stderr and result.stdout == ""
