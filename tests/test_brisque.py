"""metrics.brisque against an independent BRISQUE: features written from Mittal et al. (2012) with
the package's conventions, the AGGD shape found by the LIVE reference code's grid search (not the
package's root finder), and the SVR evaluated from the LIVE model's text file (not libsvm)."""
import os

import cv2
import numpy as np
import pytest
from scipy import ndimage, special

brisque_pkg = pytest.importorskip("brisque", reason="brisque not installed (pip install -r requirements-eval.txt)")

from conftest import ROOT  # noqa: E402
from metrics import brisque as metric  # noqa: E402

FACE = os.path.join(ROOT, "datasets", "test", "002993.jpg")
# the LIVE reference code's search range for the GGD/AGGD shape
ALPHAS = np.arange(0.2, 10.0, 0.001)
R_ALPHA = special.gamma(2 / ALPHAS) ** 2 / (special.gamma(1 / ALPHAS) * special.gamma(3 / ALPHAS))


def face():
    """A 128x128 CelebA face (the paper's 178x178 centre crop)."""
    image = cv2.cvtColor(cv2.imread(FACE), cv2.COLOR_BGR2RGB)
    top = (image.shape[0] - 178) // 2
    return cv2.resize(image[top:top + 178], (128, 128), interpolation=cv2.INTER_AREA)


def gaussian_window():
    y, x = np.mgrid[-3:4, -3:4]
    w = np.exp(-(x ** 2 + y ** 2) / (2 * (7 / 6) ** 2))
    return w / w.sum()


def mscn(grey):
    w = gaussian_window()
    mu = ndimage.correlate(grey, w, mode="constant")  # the package's zero-padded 'same' convolution
    sigma = np.sqrt(np.abs(ndimage.correlate(grey * grey, w, mode="constant") - mu * mu))
    return (grey - mu) / (sigma + 1 / 255)


def aggd(x):
    x = x.ravel()
    left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x >= 0] ** 2))
    g = left / right
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x ** 2)
    r_norm = r_hat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    alpha = ALPHAS[np.argmin((R_ALPHA - r_norm) ** 2)]
    mean = (right - left) * special.gamma(2 / alpha) / np.sqrt(special.gamma(1 / alpha) * special.gamma(3 / alpha))
    return alpha, mean, left ** 2, right ** 2


def scale_features(grey):
    m = mscn(grey)
    alpha, _, left, right = aggd(m)
    out = [alpha, (left + right) / 2]
    for product in (m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]):
        out += list(aggd(product))
    return out


def independent_features(rgb):
    grey = (rgb.astype(np.float64) / 255) @ np.array([0.2125, 0.7154, 0.0721])  # ITU-R 709 luma
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.array(scale_features(grey) + scale_features(half))


def svr_score(feats):
    """epsilon-SVR with RBF kernel, read from the model text file shipped with the package."""
    from brisque.models import MODEL_PATH

    with open(os.path.join(MODEL_PATH, "svm.txt"), encoding="ascii") as f:
        lines = f.read().splitlines()
    header = dict(line.split(None, 1) for line in lines[:lines.index("SV")])
    coefs, vectors = [], []
    for line in lines[lines.index("SV") + 1:]:
        if not line.strip():
            continue
        fields = line.split()
        coefs.append(float(fields[0]))
        v = np.zeros(36)
        for item in fields[1:]:
            i, value = item.split(":")
            v[int(i) - 1] = float(value)
        vectors.append(v)
    assert header["svm_type"] == "epsilon_svr" and header["kernel_type"] == "rbf" and len(coefs) == 770
    ranges = metric.load_model().scale_params
    lo, hi = np.array(ranges["min_"], np.float64), np.array(ranges["max_"], np.float64)
    x = -1 + 2 * (feats - lo) / (hi - lo)
    k = np.exp(-float(header["gamma"]) * np.sum((np.array(vectors) - x) ** 2, axis=1))
    return float(np.dot(coefs, k) - float(header["rho"]))


def test_features_match_the_independent_computation():
    image = face()
    got, want = metric.features(image), independent_features(image)
    assert got.shape == (36,) and got.dtype == np.float64
    shape = [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]  # AGGD shapes: grid of 0.001 vs root finding
    np.testing.assert_allclose(got[shape], want[shape], atol=1e-3)
    others = np.setdiff1d(np.arange(36), shape)
    np.testing.assert_allclose(got[others], want[others], rtol=2e-3, atol=1e-4)


def test_score_is_the_live_svr_of_the_features():
    image = face()
    assert metric.brisque(image) == pytest.approx(svr_score(metric.features(image)), abs=1e-6)
    assert metric.brisque(image) == pytest.approx(svr_score(independent_features(image)), abs=0.5)


def test_scores_rank_distortions_like_the_paper():
    """The sharp face scores best; its bicubic x8 and a noisy copy score worse (lower is better)."""
    hr = face()
    small = cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA)
    bicubic = cv2.resize(small, (128, 128), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(hr + np.random.default_rng(0).normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
    scores = {name: metric.brisque(im) for name, im in (("hr", hr), ("bicubic", bicubic), ("noisy", noisy))}
    assert scores["hr"] < 35 and scores["bicubic"] > scores["hr"] + 30 and scores["noisy"] > scores["hr"] + 10
    row = metric.per_image(hr, bicubic)
    assert row == {"brisque": scores["hr"], "bicubic_brisque": scores["bicubic"]}


def test_grey_flat_and_float_inputs(recwarn):
    image = face()
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert np.isfinite(metric.brisque(grey))
    assert np.isnan(metric.brisque(np.full((128, 128, 3), 90, np.uint8)))  # no texture: undefined, not a number
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with pytest.raises(ValueError, match="uint8"):
        metric.brisque(image.astype(np.float32))
