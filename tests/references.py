"""Independent references the tests share: the released code's steps, written with OpenCV alone
(never the product's own helpers), so a test compares the product with something else."""
import os

import cv2
import h5py
import numpy as np
from scipy.ndimage import gaussian_filter


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def released_hr(path):
    """The released test recipe: largest centred square, 128x128 INTER_LINEAR, RGB."""
    image = read_rgb(path)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[top:top + side, left:left + side], (128, 128), interpolation=cv2.INTER_LINEAR)


def block_means(image, factor=8):
    """float64 mean of each factor x factor block (NumPy reshape: not OpenCV's INTER_AREA)."""
    h, w, c = image.shape
    return np.asarray(image, np.float64).reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def consistent_with_input(sr, lr, sigma=0.0):
    """uint8 output of one back-projection step: the generator's float output plus the bicubic
    upscaling of what its 8x8 block means miss of the LR input (test.py's default output), that miss
    first smoothed by SciPy's Gaussian of `sigma` LR px (reflected borders) when `sigma` > 0."""
    residual = np.asarray(lr, np.float64) - block_means(sr)
    if sigma:
        residual = gaussian_filter(residual, (sigma, sigma, 0), mode="reflect", truncate=4.0)
    residual = residual.astype(np.float32)
    corrected = np.asarray(sr, np.float32) + cv2.resize(residual, sr.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    return np.clip(np.round(corrected), 0, 255).astype(np.uint8)


GENERATOR_PARAMETERS = 11_912_582


def check_float16_bundle(folder, records):
    """A bundle folder holds the whole generator stored as float16 (read with h5py), which
    models.load_generator restores as float32, and each of `records`, not empty."""
    from models import load_generator

    arrays = []
    with h5py.File(os.path.join(folder, "generator.weights.h5"), "r") as f:
        f.visititems(lambda _, obj: arrays.append(obj) if isinstance(obj, h5py.Dataset) else None)
        assert sum(a.size for a in arrays) == GENERATOR_PARAMETERS
        assert {a.dtype for a in arrays} == {np.dtype("float16")}
    generator = load_generator(folder)  # what test.py runs: float32 again
    assert generator.count_params() == GENERATOR_PARAMETERS and {w.dtype for w in generator.weights} == {"float32"}
    for name in records:
        assert os.path.getsize(os.path.join(folder, name)) > 0, name
