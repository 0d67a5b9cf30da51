"""How hard a photo was JPEG-compressed, read from its pixels: `estimate_quality(photo)`.

A JPEG stores each 8x8 block of luminance as DCT coefficients divided by a
quantisation table and rounded, so after decoding, the coefficients of the
photo's own 8x8 grid sit near whole multiples of that table's steps; an
uncompressed photo's coefficients sit anywhere. Most encoders (libjpeg, and so
OpenCV, Pillow, browsers and phones' defaults) scale the standard's table by a
quality of 1-100: the estimate is the lowest quality (coarsest steps) whose
table the coefficients fit. It needs the photo as decoded, on the grid the
encoder used: a photo cropped off that grid or resized after compression
reads as uncompressed.
"""
import numpy as np
from scipy.fft import dctn

# The JPEG standard's luminance quantisation table (ITU-T T.81, Annex K, Table K.1), row by row.
LUMINANCE_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64).reshape(8, 8)
BLOCK = 8
# Steps under this many grey levels are left out: the decoder's rounding to 8 bits moves a
# coefficient by up to about one level, so small steps fit any photo.
MIN_STEP = 4
# Coefficients tested per candidate table: fewer cannot tell a fit from chance.
MIN_COEFFICIENTS = 50
# Mean distance to the nearest multiple, in steps: uniform for a photo that does not fit
# (0.25), near 0 for the table that made it (docs/evaluation.md, "Correcting the output on
# compressed inputs").
FIT = 0.12
# Blocks read at most, evenly spread: a large photo's estimate costs no more than a small one's.
MAX_BLOCKS = 4096


def quality_table(quality):
    """libjpeg's luminance table for a quality of 1-100 (jcparam.c: jpeg_quality_scaling)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((LUMINANCE_TABLE * scale + 50) / 100), 1, 255)


def block_coefficients(photo):
    """float64 [n, 8, 8] DCT coefficients (JPEG's: orthonormal DCT-II of level-shifted luminance) of
    the 8x8 blocks on the photo's grid from its top-left pixel, at most MAX_BLOCKS of them."""
    rgb = np.asarray(photo, np.float64)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114 - 128   # JFIF's Y
    h, w = (luma.shape[0] // BLOCK) * BLOCK, (luma.shape[1] // BLOCK) * BLOCK
    blocks = luma[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[np.linspace(0, len(blocks) - 1, MAX_BLOCKS).astype(int)]
    return dctn(blocks, axes=(1, 2), norm="ortho")


def estimate_quality(photo):
    """The lowest libjpeg quality (1-100) whose table the uint8 RGB photo's coefficients fit, or None:
    no sign of JPEG compression (or too few coefficients to tell, as in a flat photo). A neighbouring
    quality whose table differs by a level here and there may fit first."""
    coefficients = block_coefficients(photo)
    for quality in range(1, 101):
        steps = quality_table(quality)
        tested = (np.abs(coefficients) >= steps / 2) & (steps >= MIN_STEP)
        if tested.sum() < MIN_COEFFICIENTS:
            continue
        ratio = coefficients[tested] / np.broadcast_to(steps, coefficients.shape)[tested]
        if np.abs(ratio - np.round(ratio)).mean() < FIT:
            return quality
    return None
