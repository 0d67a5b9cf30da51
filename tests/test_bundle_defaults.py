"""Which bundled generator each entry point runs without --weight_path: the real-photo one
(checkpoint/CelebA-real) for photos, the paper's (checkpoint/CelebA) for aligned faces; --weight_path
replaces both."""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT
from options.test_options import TestOptions, weights_by_mode

SAMPLES = os.path.join(ROOT, "datasets", "test")
PAPER, REAL = os.path.join("checkpoint", "CelebA"), os.path.join("checkpoint", "CelebA-real")


@pytest.mark.parametrize("argv, expected", [
    ([], PAPER),
    (["--real_world"], REAL),
    (["--weight_path", REAL], REAL),
    (["--real_world", "--weight_path", PAPER], PAPER),
])
def test_test_py_weights_by_mode(argv, expected, monkeypatch):
    monkeypatch.chdir(ROOT)  # test.py's defaults are relative to where it runs, as its README command does
    assert TestOptions().parse(argv + ["--test_path", SAMPLES, "--gpu_ids", "-1"]).weight_path == expected


def test_missing_real_bundle_is_one_line_naming_it_and_weight_path(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # a clone whose checkpoint/CelebA-real was deleted
    (tmp_path / "checkpoint" / "CelebA").mkdir(parents=True)
    with pytest.raises(SystemExit):
        TestOptions().parse(["--real_world", "--test_path", SAMPLES, "--gpu_ids", "-1"])
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and err.strip().splitlines()[-1].endswith(
        f"error: the bundled generator {REAL} is missing (git checkout -- {REAL} restores it); or pass --weight_path")
    assert TestOptions().parse(["--test_path", SAMPLES, "--gpu_ids", "-1"]).weight_path == PAPER  # aligned: fine


def test_help_says_which_default_applies():
    text = " ".join(TestOptions().parser().format_help().split())
    assert f"(default: {PAPER} for aligned faces, {REAL} with --real_world)" in text, text


def test_test_py_real_world_without_weight_path_records_the_real_bundle(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    name = sorted(os.listdir(SAMPLES))[0]
    shutil.copyfile(os.path.join(SAMPLES, name), photos / name)
    out = tmp_path / "out"
    monkeypatch.chdir(ROOT)
    spec = importlib.util.spec_from_file_location("eipnet_test_py", os.path.join(ROOT, "test.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--real_world", "--test_path", str(photos), "--image_save_path", str(out), "--upscale", "1",
                 "--workers", "1", "--gpu_ids", "-1"])
    assert json.loads((out / "summary.json").read_text())["weight_path"] == REAL


def test_demo_loads_the_real_bundle_for_photos_and_the_paper_one_for_faces():
    assert weights_by_mode(None, ROOT) == (os.path.join(ROOT, REAL), os.path.join(ROOT, PAPER))
    assert weights_by_mode("mine.weights.h5", ROOT) == ("mine.weights.h5", "mine.weights.h5")


def test_each_demo_mode_runs_its_own_generator_and_names_it(tmp_path):
    from deploy.web_demo import Model, run

    def constant(level):
        def predict(lr):
            return np.full((lr.shape[0], lr.shape[1] * 8, lr.shape[2] * 8, 3), level, np.float32), None
        return predict

    models = {"photo": Model("checkpoint/CelebA-real", constant(40.0)),
              "aligned face": Model("checkpoint/CelebA", constant(200.0))}
    sample = os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[0])
    # an aligned face: the 128x128 output is the face model's
    _, _, sr, _, _, _, status = run(sample, "aligned face", 4, models, str(tmp_path))
    assert sr.shape == (128, 128, 3) and (sr == 200).all() and status.endswith("Model: checkpoint/CelebA"), status
    # the same 178x218 photo in photo mode: its face is too large, so the page shows the photo model's
    # output for that face shrunk to 16x16
    _, _, sr, _, _, _, status = run(sample, "photo", 1, models, str(tmp_path))
    assert sr.shape == (128, 128, 3) and (sr == 40).all() and status.endswith("Model: checkpoint/CelebA-real"), status
