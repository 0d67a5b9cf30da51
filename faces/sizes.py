"""Size checks of the real-photo path: a photo it can read, an output it may compose."""
import math

import numpy as np


class PhotoTooLargeError(ValueError):
    """The composed photo (input size x upscale) would exceed the pixel limit."""


MAX_OUTPUT_PIXELS = 100_000_000   # composed photos above this are refused


def check_output_size(height, width, upscale, max_pixels=MAX_OUTPUT_PIXELS):
    """Raise PhotoTooLargeError (a ValueError) when H*u x W*u is over `max_pixels`."""
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"--upscale must be a whole number >= 1, got {upscale}")
    upscale = int(upscale)
    out_h, out_w = height * upscale, width * upscale
    if out_h * out_w > max_pixels:
        largest = int(math.isqrt(int(max_pixels // max(1, height * width))))
        hint = (f"use --upscale {largest} or less, or a smaller photo" if largest >= 1
                else "downscale the photo first")
        raise PhotoTooLargeError(
            f"a {width}x{height} photo upscaled x{upscale} would be {out_w}x{out_h} "
            f"({out_w * out_h / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP limit: {hint}")
    return out_h, out_w


def check_photo(photo):
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB photo [H, W, 3], got {photo.dtype} {photo.shape}")
    return np.ascontiguousarray(photo)
