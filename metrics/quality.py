"""Full-reference image quality: PSNR and SSIM on RGB and on BT.601 luma.

Conventions (stated in docs/evaluation.md): images on [0, 255]; SR output rounded and
clipped to uint8 first (what is written to disk is what is measured); no border
crop; RGB PSNR over all pixels and channels; SSIM of Wang et al. with an 11x11
Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, valid region only,
averaged over channels; Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
"""
import cv2
import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def rgb_to_y(image):
    """ITU-R BT.601 luma on the [16, 235] scale, float64 [H, W]."""
    rgb = np.asarray(image, np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr(a, b, max_value=255.0):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(max_value ** 2 / mse))


def _gaussian_window():
    g = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F)
    return g @ g.T


def _filter_valid(x, window):
    pad = SSIM_WINDOW // 2
    out = cv2.filter2D(x, cv2.CV_64F, window, borderType=cv2.BORDER_REFLECT)
    return out[pad:-pad, pad:-pad]


def _ssim_channel(a, b, window):
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a ** 2
    var_b = _filter_valid(b * b, window) - mu_b ** 2
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a ** 2 + mu_b ** 2 + _C1) * (var_a + var_b + _C2)
    return float(np.mean(num / den))


def ssim(a, b):
    """Mean SSIM of two images [H, W] or [H, W, C] (H, W >= 11)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"SSIM of differently shaped images {a.shape} and {b.shape}")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape[:2]}")
    window = _gaussian_window()
    if a.ndim == 2:
        return _ssim_channel(a, b, window)
    return float(np.mean([_ssim_channel(a[..., c], b[..., c], window) for c in range(a.shape[2])]))


def quality(sr, hr):
    """dict psnr, ssim, psnr_y, ssim_y of uint8 SR against uint8 HR."""
    y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
    return {"psnr": psnr(sr, hr), "ssim": ssim(sr, hr), "psnr_y": psnr(y_sr, y_hr), "ssim_y": ssim(y_sr, y_hr)}
