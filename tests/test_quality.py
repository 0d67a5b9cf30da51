"""PSNR / SSIM / luma against scikit-image, and the HR -> LR degradation against OpenCV.

tests/test_pipeline.py checks the training pipeline's LR batches; here the
`degrade` / `pyramid` functions that test.py calls are checked directly.
"""
import cv2
import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from data.degradation import degrade, pyramid
from metrics.quality import psnr, quality, rgb_to_y, ssim
from utils import to_uint8

SKIMAGE_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def image_pair(shape, noise, seed):
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.integers(0, 256, shape).astype(np.uint8), (5, 5), 1.0)
    b = np.clip(np.round(a + rng.normal(0, noise, a.shape)), 0, 255).astype(np.uint8)
    return a, b


def skimage_ssim_valid(a, b):
    """skimage's SSIM map averaged over the region its 11x11 window covers without padding."""
    kwargs = dict(SKIMAGE_SSIM, channel_axis=2) if a.ndim == 3 else SKIMAGE_SSIM
    mean, full = structural_similarity(a, b, full=True, **kwargs)
    valid = full[5:-5, 5:-5].mean()
    assert mean == pytest.approx(valid, abs=1e-12)  # skimage's own mean is that valid region
    return valid


@pytest.mark.parametrize("shape,noise", [((128, 128, 3), 8), ((37, 50, 3), 30), ((11, 11, 3), 5),
                                         ((64, 45), 15), ((20, 90, 3), 60)])
def test_psnr_and_ssim_match_skimage(shape, noise):
    a, b = image_pair(shape, noise, seed=sum(shape))
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    assert ssim(a, b) == pytest.approx(skimage_ssim_valid(a, b), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert psnr(a, a) == float("inf")


def test_ssim_excludes_the_padded_border():
    a, b = image_pair((40, 40, 3), 10, seed=1)
    mean, full = structural_similarity(a, b, full=True, channel_axis=2, **SKIMAGE_SSIM)
    assert abs(ssim(a, b) - full.mean()) > 1e-4  # a padded-border mean would differ
    c = b.copy()
    c[:5] = 0  # only the outer 5 rows: still inside the valid windows' reach
    assert ssim(a, c) != ssim(a, b)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:10], b[:10])
    with pytest.raises(ValueError, match="differently shaped"):
        ssim(a, b[:, :39])


def test_rgb_to_y_is_bt601():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (17, 23, 3)).astype(np.uint8)
    np.testing.assert_allclose(rgb_to_y(rgb), rgb2ycbcr(rgb)[..., 0], atol=1e-9)
    corners = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(corners)[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966],
                               atol=1e-9)


def test_quality_dict_uses_rgb_and_luma():
    hr, sr = image_pair((32, 32, 3), 12, seed=3)
    q = quality(sr, hr)
    y_sr, y_hr = rgb2ycbcr(sr)[..., 0], rgb2ycbcr(hr)[..., 0]
    assert q["psnr"] == pytest.approx(peak_signal_noise_ratio(hr, sr, data_range=255), abs=1e-10)
    assert q["ssim"] == pytest.approx(skimage_ssim_valid(sr, hr), abs=1e-10)
    assert q["psnr_y"] == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-9)
    assert q["ssim_y"] == pytest.approx(skimage_ssim_valid(y_sr, y_hr), abs=1e-9)


def test_to_uint8_rounds_and_clips():
    values = np.array([-3.2, 0.4, 0.6, 1.5, 2.5, 127.49, 254.6, 255.4, 300.0])
    np.testing.assert_array_equal(to_uint8(values), [0, 0, 1, 2, 2, 127, 255, 255, 255])
    assert to_uint8(values).dtype == np.uint8


def cv2_half(image):
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("shape", [(128, 128, 3), (64, 48, 3), (8, 8, 3)])
def test_degrade_is_three_cv2_bilinear_steps(shape):
    rng = np.random.default_rng(shape[1])
    batch = rng.integers(0, 256, (3,) + shape).astype(np.uint8)
    batch[0, :2, :2] = [[[0, 0, 0], [0, 0, 1]], [[1, 1, 1], [1, 1, 0]]]  # 2x2 means of exactly .5: cv2 rounds them up
    levels = pyramid(batch.astype(np.float32))
    lr_single = degrade(batch[1])
    for i, image in enumerate(batch):
        expected = image
        for level in levels:
            expected = cv2_half(expected)
            np.testing.assert_array_equal(level[i].numpy(), expected.astype(np.float32))
    np.testing.assert_array_equal(degrade(batch).numpy(), levels[-1].numpy())
    np.testing.assert_array_equal(lr_single.numpy(), levels[-1][1].numpy())
    assert lr_single.shape == (shape[0] // 8, shape[1] // 8, 3)
