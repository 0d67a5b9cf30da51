"""test.py's parallel evaluation (metrics.evaluator): the same values as the serial path, to the last bit."""
import csv
import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from metrics import evaluator
from metrics.evaluator import Evaluation, FaceMetrics, evaluate_face, prefetched
from metrics.quality import psnr, quality, ssim
from metrics.vif import vif

TEST_IMAGES = os.path.join(ROOT, "datasets", "test")
BUNDLED = os.path.join(ROOT, "checkpoint", "CelebA")
TIMING_KEYS = ("images_per_s", "faces_per_s", "workers")


class ContentNet:
    """A FaceNet stand-in whose embedding is a function of the image alone (8x8 block means)."""

    def __init__(self):
        self.calls = []

    def embed(self, images):
        assert images.dtype == np.float32 and images.ndim == 4
        self.calls.append(len(images))
        e = images.reshape(len(images), 8, images.shape[1] // 8, 8, images.shape[2] // 8, 3).mean(axis=(2, 4))
        e = e.reshape(len(images), -1) - 127.5
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def _faces(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hr = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8), (5, 5), 1.5)
        sr = np.clip(hr.astype(int) + rng.integers(-9, 10, hr.shape), 0, 255).astype(np.uint8)
        bicubic = cv2.GaussianBlur(hr, (7, 7), 2.5)
        out.append((sr, bicubic, None if i % 7 == 3 else hr))  # some faces without HR (as with --lr_input)
    return out


def _run(workers, faces, folder):
    net = ContentNet()
    face_metrics = FaceMetrics(fr=False, vif=True, tar_algo=False, tar_net=True, identity_network=net)
    evaluation = Evaluation(workers, face_metrics)
    done = 0
    for i, (sr, bicubic, hr) in enumerate(faces):
        evaluation.add(sr, bicubic, hr, [str(folder / f"{i}_SR.png"), str(folder / f"{i}_LR.png")])
        done += evaluation.completed()
    rows = evaluation.finish()
    return rows, done + evaluation.completed(), net.calls


def test_parallel_rows_equal_serial_rows_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluator, "BACKLOG_PER_WORKER", 2)  # the parent must wait for workers, in order
    faces = _faces(2 * evaluator.FACENET_GROUP + 5)
    serial, done1, calls1 = _run(1, faces, tmp_path / "serial")
    parallel, done2, calls2 = _run(2, faces, tmp_path / "parallel")
    assert done1 == done2 == len(faces)
    with_hr = sum(hr is not None for _, _, hr in faces)
    # FaceNet: one call per group of FACENET_GROUP faces with HR (3 images each), the rest at the end
    groups = [evaluator.FACENET_GROUP] * (with_hr // evaluator.FACENET_GROUP) + [with_hr % evaluator.FACENET_GROUP]
    assert calls1 == calls2 == [3 * g for g in groups if g]
    assert len(serial) == len(parallel) == len(faces)
    for i, ((sr, bicubic, hr), a, b) in enumerate(zip(faces, serial, parallel)):
        assert cv2.imread(str(tmp_path / "parallel" / f"{i}_SR.png")) is not None
        if hr is None:
            assert a is None and b is None
            continue
        assert list(a) and a.keys() == b.keys()
        for key in a:  # bit for bit, not approximately
            assert a[key] == b[key] or (math.isnan(a[key]) and math.isnan(b[key])), (i, key)
        # and the values are the metrics of this face, in add() order
        assert a["psnr"] == quality(sr, hr)["psnr"] and a["bicubic_ssim"] == ssim(bicubic, hr)
        assert a["vif"] == vif(hr, sr) and a["bicubic_vif"] == vif(hr, bicubic)
        alone = FaceMetrics(fr=False, vif=False, tar_algo=False, tar_net=True,
                                  identity_network=ContentNet()).per_image(sr, bicubic, hr)
        assert a["dist_net"] == pytest.approx(alone["dist_net"], abs=1e-12)
        assert a["bicubic_dist_net"] == pytest.approx(alone["bicubic_dist_net"], abs=1e-12)


def test_evaluate_face_writes_the_pngs_and_the_base_metrics(tmp_path):
    sr, bicubic, hr = _faces(1)[0]
    paths = [str(tmp_path / "a_SR.png"), str(tmp_path / "a_LR.png")]
    row = evaluate_face(sr, bicubic, hr, paths)
    for path, image in zip(paths, (sr, bicubic)):
        np.testing.assert_array_equal(cv2.imread(path)[:, :, ::-1], image)
    assert row == {**quality(sr, hr), "bicubic_psnr": psnr(bicubic, hr), "bicubic_ssim": ssim(bicubic, hr)}
    assert evaluate_face(sr, bicubic, None, [str(tmp_path / "b_SR.png"), str(tmp_path / "b_LR.png")]) is None


def test_prefetched_keeps_order_and_reads_ahead():
    import threading

    loaded, second = [], threading.Event()

    def load(x):
        loaded.append(x)
        if x == 1:
            second.set()
        return x * 10

    seen = []
    for item, value in prefetched(range(5), load):
        seen.append((item, value))
        if item == 0:  # item 1 loads while the caller still holds item 0
            assert second.wait(10)
    assert seen == [(i, 10 * i) for i in range(5)] and loaded == list(range(5))
    assert list(prefetched([], load)) == []


def _facenet_weights():
    from models.identity import CONVERTED_WEIGHTS, KERAS_FACENET_WEIGHTS

    return next((w for w in (KERAS_FACENET_WEIGHTS, CONVERTED_WEIGHTS) if os.path.isfile(w)), None)


@pytest.mark.slow
def test_metrics_csv_is_byte_identical_for_any_workers(tmp_path):
    """The full protocol (every metric whose dependencies are here) serially and across 2 processes."""
    weights = _facenet_weights()
    extra = ["--id_weights", weights] if weights else ["--no_tar_net"]
    faces = tmp_path / "faces"  # 5 of the sample faces: batches of 3 leave a partial one
    faces.mkdir()
    for name in sorted(os.listdir(TEST_IMAGES))[:5]:
        (faces / name).write_bytes(open(os.path.join(TEST_IMAGES, name), "rb").read())
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--weight_path", BUNDLED,
                                 "--test_path", str(faces), "--image_save_path", str(out), "--num_figures", "0",
                                 "--workers", str(workers), "--batchSize", "3", *extra],
                                cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "face/s" in result.stderr  # the progress bar counts faces
        outs[workers] = out
    csv1, csv2 = ((outs[w] / "metrics.csv").read_bytes() for w in (1, 2))
    assert csv1 == csv2
    with open(outs[1] / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and "vif" in rows[0]
    s1, s2 = (json.loads((outs[w] / "summary.json").read_text()) for w in (1, 2))
    assert (s1["workers"], s2["workers"]) == (1, 2) and s1["faces_per_s"] > 0
    assert {k: v for k, v in s1.items() if k not in TIMING_KEYS} == {k: v for k, v in s2.items()
                                                                   if k not in TIMING_KEYS}
    for stem in (r["name"] for r in rows):
        assert (outs[1] / f"{stem}_SR.png").read_bytes() == (outs[2] / f"{stem}_SR.png").read_bytes()
