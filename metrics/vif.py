"""Pixel-domain Visual Information Fidelity (VIFp) of Sheikh and Bovik.

A transcription of the reference MATLAB ``vifp_mscale.m`` (the multi-scale
pixel-domain VIF released with "Image information and visual quality",
IEEE TIP 2006), which is what "VIF" means in the EIPNet paper's Table 6:

* 4 scales; at scale s (1..4) a Gaussian window of N = 2^(4-s+1)+1 taps
  (17, 9, 5, 3) with sigma N/5 (MATLAB ``fspecial('gaussian', N, N/5)``);
* from scale 2 on, both images are low-passed with that scale's window
  ('valid' region) and decimated by 2 before the statistics are taken;
* local means/variances/covariance by 'valid' filtering with the window;
* HVS noise variance sigma_nsq = 2 (pixel units of a 0..255 image), the
  1e-10 guards of the reference, VIF = sum(num) / sum(den) over all scales.

Colour: VIF is defined on a grey image. RGB inputs are reduced to full-range
luma ``0.299 R + 0.587 G + 0.114 B`` in float64 with no rounding (MATLAB's
``rgb2gray`` weights, the Y of YIQ that e.g. piq's ``vif_p`` uses), so the
0..255 scale that sigma_nsq = 2 assumes is kept. ``luma="y"`` selects BT.601
studio-range Y of :func:`metrics.quality.rgb_to_y` instead (16..235, i.e.
contrast scaled by 219/255, which changes VIF slightly). 2-D inputs are used
as they are.
"""
import cv2
import numpy as np

from metrics.quality import rgb_to_y

SIGMA_NSQ = 2.0
SCALES = 4
_EPS = 1e-10
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_gray(image, luma="gray"):
    """float64 [H, W] grey of an RGB [H, W, 3] image (2-D images unchanged)."""
    x = np.asarray(image, np.float64)
    if x.ndim == 2:
        return x
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"VIF expects [H, W] or [H, W, 3] images, got shape {x.shape}")
    if luma == "gray":
        return GRAY_WEIGHTS[0] * x[..., 0] + GRAY_WEIGHTS[1] * x[..., 1] + GRAY_WEIGHTS[2] * x[..., 2]
    if luma == "y":
        return rgb_to_y(x)
    raise ValueError(f"luma must be 'gray' or 'y', got {luma!r}")


def window_size(scale):
    """Gaussian window taps at scale 1..4: 17, 9, 5, 3."""
    return 2 ** (SCALES - scale + 1) + 1


def _gauss_1d(n):
    return cv2.getGaussianKernel(n, n / 5.0, cv2.CV_64F)


def _filter_valid(x, kernel):
    """Separable Gaussian filtering, 'valid' region (MATLAB filter2 'valid')."""
    pad = kernel.shape[0] // 2
    out = cv2.sepFilter2D(x, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    return out[pad:x.shape[0] - pad, pad:x.shape[1] - pad]


def min_size():
    """Smallest image side VIFp's four scales can handle (with non-empty maps)."""
    need = window_size(SCALES)  # the last scale's statistics need one window
    for scale in range(SCALES, 1, -1):
        # scale-1 image: pre-filter ('valid') then decimate must leave `need`,
        # and its own statistics need one window of its size
        need = max(window_size(scale - 1), 2 * need - 1 + window_size(scale) - 1)
    return need


def vif_components(ref, dist, luma="gray"):
    """(num, den) per scale, lists of 4 floats; VIF = sum(num) / sum(den)."""
    ref, dist = to_gray(ref, luma), to_gray(dist, luma)
    if ref.shape != dist.shape:
        raise ValueError(f"VIF of differently shaped images {ref.shape} and {dist.shape}")
    if min(ref.shape) < min_size():
        raise ValueError(f"VIF needs images of at least {min_size()}x{min_size()}, got {ref.shape}")
    nums, dens = [], []
    for scale in range(1, SCALES + 1):
        k = _gauss_1d(window_size(scale))
        if scale > 1:
            ref = _filter_valid(ref, k)[::2, ::2]
            dist = _filter_valid(dist, k)[::2, ::2]
        mu1, mu2 = _filter_valid(ref, k), _filter_valid(dist, k)
        sigma1_sq = _filter_valid(ref * ref, k) - mu1 * mu1
        sigma2_sq = _filter_valid(dist * dist, k) - mu2 * mu2
        sigma12 = _filter_valid(ref * dist, k) - mu1 * mu2
        sigma1_sq = np.maximum(sigma1_sq, 0.0)
        sigma2_sq = np.maximum(sigma2_sq, 0.0)

        g = sigma12 / (sigma1_sq + _EPS)
        sv_sq = sigma2_sq - g * sigma12
        flat1 = sigma1_sq < _EPS
        g[flat1] = 0.0
        sv_sq[flat1] = sigma2_sq[flat1]
        sigma1_sq[flat1] = 0.0
        flat2 = sigma2_sq < _EPS
        g[flat2] = 0.0
        sv_sq[flat2] = 0.0
        neg = g < 0
        sv_sq[neg] = sigma2_sq[neg]
        g[neg] = 0.0
        sv_sq[sv_sq <= _EPS] = _EPS

        nums.append(float(np.sum(np.log10(1.0 + g * g * sigma1_sq / (sv_sq + SIGMA_NSQ)))))
        dens.append(float(np.sum(np.log10(1.0 + sigma1_sq / SIGMA_NSQ))))
    return nums, dens


def vif(ref, dist, luma="gray"):
    """VIFp of ``dist`` against the reference ``ref`` (HR first, SR second).

    Images [H, W] or [H, W, 3] RGB on [0, 255] (uint8 or float), at least
    ``min_size()`` (= 41) pixels a side. 1.0 for identical images; lower for
    noise/blur; may exceed 1 for contrast enhancement. NaN when the reference
    is flat at every scale (0 / 0, as in the MATLAB reference).
    """
    nums, dens = vif_components(ref, dist, luma)
    den = sum(dens)
    if den == 0.0:
        return float("nan")
    return float(sum(nums) / den)
