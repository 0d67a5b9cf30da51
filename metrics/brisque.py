"""BRISQUE (Mittal et al., 2012), the no-reference score of the paper's Table 8; lower is better.

The standard model trained on the LIVE IQA database (its SVR and feature
ranges, as released with BRISQUE) ships in the PyPI package `brisque`
(requirements-eval.txt); nothing is downloaded. Features and SVR are the
package's: 36 features (MSCN and pairwise-product AGGD fits, 7x7 Gaussian of
sigma 7/6, at full and half scale) of the grey image on [0, 1].

`brisque.BRISQUE.score` itself fails under numpy >= 2 (it calls float() on
1-element arrays), so `brisque()` below runs the same steps and hands the SVR
plain floats.
"""
import warnings

import cv2
import numpy as np

from metrics.face import INSTALL_HINT, EvalDependencyError

KERNEL_SIZE = 7
SIGMA = 7 / 6

_model = None


def load_model():
    """The package's BRISQUE object (LIVE SVR + feature ranges), loaded once per process."""
    global _model
    if _model is None:
        try:  # optional (requirements-eval.txt)
            from brisque import BRISQUE
        except ImportError as err:
            raise EvalDependencyError(f"brisque is not installed: {INSTALL_HINT}") from err
        _model = BRISQUE(url=False)
    return _model


def features(image_uint8):
    """The 36 BRISQUE features (float64) of a uint8 RGB or grey image, as the package computes them."""
    import skimage.color  # optional (requirements-eval.txt): imported only when BRISQUE is asked for

    image = np.asarray(image_uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"BRISQUE takes uint8 images, got {image.dtype}")
    grey = skimage.color.rgb2gray(image) if image.ndim == 3 else image / 255.0
    model = load_model()
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    # a flat region has no distribution to fit: its features come out NaN, without a warning per image
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.concatenate([model.calculate_brisque_features(g, kernel_size=KERNEL_SIZE, sigma=SIGMA)
                                 for g in (grey, half)])
    return np.array([float(np.asarray(v, np.float64).reshape(())) for v in values])


def brisque(image_uint8):
    """BRISQUE score of one uint8 image (about 0 to 100 for natural images, lower is better).

    NaN for an image without texture (a flat colour), whose features are undefined.
    """
    values = features(image_uint8)
    if not np.all(np.isfinite(values)):
        return float("nan")
    # The package's numpy reductions take SIMD paths that depend on where an array sits in
    # memory, so the same image scores differently in the last ~12th digit from call to call;
    # six decimals make a run's rows reproducible (test.py --workers 1 and 2 alike).
    return round(float(load_model().calculate_image_quality_score(values)), 6)


KEYS = ("brisque", "bicubic_brisque")


def per_image(sr_uint8, bicubic_uint8):
    """metrics.csv / summary.json values of one face: BRISQUE of the SR and of the bicubic image."""
    return dict(zip(KEYS, (brisque(sr_uint8), brisque(bicubic_uint8))))
