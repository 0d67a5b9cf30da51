"""HR -> LR degradations: the released code's (the paper's), in TensorFlow, and one for real inputs.

The released code makes the 16x16 input by three successive 2x
`cv2.resize(..., INTER_LINEAR)` steps on uint8 images. At exactly half size
OpenCV's INTER_LINEAR averages each 2x2 block and rounds half up, so each step
is a 2x2 average pool followed by floor(x + 0.5). Doing it in TF keeps one
function for test.py (eager, on a batch) and the tf.data pipeline (in graph).
"""
import dataclasses
import hashlib
import math

import cv2
import numpy as np
import tensorflow as tf

from data.constants import BLUR_REACH, DEGRADATIONS, JPEG_QUALITY, SCALE

STEPS = 3  # 2 ** STEPS == SCALE


def downscale_2x(images):
    """One uint8-rounded 2x bilinear step on float [N, H, W, C] in [0, 255]."""
    pooled = tf.nn.avg_pool2d(images, ksize=2, strides=2, padding="VALID")
    return tf.floor(pooled + 0.5)


def pyramid(hr):
    """(hr/2, hr/4, hr/8) of a batch [N, H, W, C] or one image [H, W, C].

    float32 on the [0, 255] scale with integer values, each level made from
    the previous one by `downscale_2x`.
    """
    hr = tf.convert_to_tensor(hr)
    single = hr.shape.rank == 3
    x = tf.cast(hr[None] if single else hr, tf.float32)
    levels = []
    for _ in range(STEPS):
        x = downscale_2x(x)
        levels.append(x[0] if single else x)
    return tuple(levels)


def degrade(hr):
    """The H/8 x W/8 LR input for HR pixels (batch or single image)."""
    return pyramid(hr)[-1]


# the real recipe's downsampling kernels, drawn with equal odds
KERNELS = ("area", "bilinear", "bicubic")


@dataclasses.dataclass(frozen=True)
class RealRecipe:
    """Ranges of the real-input degradation (train.py --degradation_recipe real; defaults in options/).

    A sample is clean (the paper's pyramid alone) with probability `clean`;
    otherwise its HR face is blurred (probability `blur`, Gaussian sigma
    uniform in `blur_sigma` HR px), shrunk 8x by a kernel of KERNELS, rounded
    to 8 bits, given Gaussian noise (probability `noise`, sigma uniform in
    `noise_sigma` grey levels) and a JPEG round trip (probability `jpeg`,
    quality uniform over the integers of `jpeg_quality`).
    """
    clean: float
    blur: float
    blur_sigma: tuple[float, float]
    noise: float
    noise_sigma: tuple[float, float]
    jpeg: float
    jpeg_quality: tuple[int, int]


def blur_radius(sigma):
    """Half-width (px) of the Gaussian taps for a blur of std up to `sigma`."""
    return max(1, math.ceil(BLUR_REACH * sigma))


def gaussian_blur(image, sigma, radius):
    """[H, W, C] float image blurred by a Gaussian of std `sigma` (a tensor), truncated at `radius` px."""
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    taps = tf.exp(-0.5 * tf.square(x / tf.maximum(sigma, 1e-3)))
    taps /= tf.reduce_sum(taps)
    channels = image.shape[-1]
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, cols, [1, 1, 1, 1], "VALID")[0]


def shrink(hr, kernel):
    """float [H/8, W/8, C] of one float HR face by KERNELS[kernel] (a tensor index), not yet rounded."""
    h, w = hr.shape[0] // SCALE, hr.shape[1] // SCALE
    candidates = [tf.nn.avg_pool2d(hr[None], SCALE, SCALE, "VALID")[0],
                  pyramid(hr)[-1],
                  tf.image.resize(hr, [h, w], method="bicubic", antialias=True)]
    return tf.gather(tf.stack(candidates), kernel)


def _jpeg_np(lr, quality):
    return lr if quality == 0 else jpeg_roundtrip(lr, int(quality))


def real_degrade(hr, seed, recipe, clean_lr=None):
    """LR input [H/8, W/8, 3] (float, integer values 0-255) of one float HR face, drawn by a stateless `seed`.

    `clean_lr`, the paper's input of `hr` (`degrade`), is what a clean draw returns: the
    training pipeline has it already; computed here when not given.

    A pure function of (hr, seed, recipe). The JPEG round trip is OpenCV's,
    the codec the test and real-photo paths read and write with.
    """
    seeds = tf.random.experimental.stateless_split(seed, 9)

    def uniform(i, low=0.0, high=1.0):
        return tf.random.stateless_uniform([], seeds[i], low, high)

    radius = blur_radius(recipe.blur_sigma[1])
    blurred = tf.where(uniform(1) < recipe.blur,
                       gaussian_blur(hr, uniform(2, *recipe.blur_sigma), radius), hr)
    kernel = tf.random.stateless_uniform([], seeds[3], 0, len(KERNELS), tf.int32)
    lr = tf.clip_by_value(tf.round(shrink(blurred, kernel)), 0, 255)
    noisy = lr + uniform(5, *recipe.noise_sigma) * tf.random.stateless_normal(tf.shape(lr), seeds[6])
    lr = tf.where(uniform(4) < recipe.noise, tf.clip_by_value(tf.round(noisy), 0, 255), lr)
    low, high = recipe.jpeg_quality
    quality = tf.random.stateless_uniform([], seeds[8], low, high + 1, tf.int32)
    quality = tf.where(uniform(7) < recipe.jpeg, quality, 0)
    lr = tf.numpy_function(_jpeg_np, [tf.cast(lr, tf.uint8), quality], tf.uint8, stateful=False)
    lr = tf.ensure_shape(tf.cast(lr, tf.float32), [hr.shape[0] // SCALE, hr.shape[1] // SCALE, hr.shape[2]])
    return tf.where(uniform(0) < recipe.clean, degrade(hr) if clean_lr is None else clean_lr, lr)


def jpeg_roundtrip(image, quality=JPEG_QUALITY):
    """uint8 RGB image encoded as baseline JPEG at ``quality`` (OpenCV's libjpeg) and decoded."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding of a {image.shape} image failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# test.py's noise has no --seed to come from: this fixed one, with each face's name, draws it
TEST_NOISE_SEED = 0


def seed_words(name):
    """Integers of a text `name` for a NumPy seed: the same on every run and machine (unlike hash())."""
    return list(np.frombuffer(hashlib.sha256(name.encode()).digest(), np.uint32))


def add_noise(image, sigma, seed):
    """uint8 `image` plus Gaussian noise of std `sigma` grey levels drawn from NumPy `seed` (ints), rounded
    and clipped to 8 bits, as the real recipe's noise."""
    noise = np.random.default_rng(seed).standard_normal(image.shape)
    return np.clip(np.round(image + sigma * noise), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class InputDegradation:
    """How test.py makes a face's LR input (see `degrade_test`): the kernel of KERNELS and the controls
    (0 / None: off)."""
    kernel: str = "bilinear"
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None

    @classmethod
    def of(cls, kind="bilinear", blur_sigma=0.0, noise_sigma=0.0, jpeg_quality=None):
        """From test.py's options: `kind` one of DEGRADATIONS, "jpeg" being bilinear + JPEG_QUALITY."""
        if kind not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(DEGRADATIONS)}")
        if kind == "jpeg":
            if jpeg_quality is not None:
                raise ValueError(f"degradation 'jpeg' is JPEG quality {JPEG_QUALITY}: give no other quality")
            kind, jpeg_quality = "bilinear", JPEG_QUALITY
        return cls(kind, float(blur_sigma), float(noise_sigma), jpeg_quality)

    def label(self):
        """e.g. 'area, blur 1.0, noise 3, JPEG 60'."""
        parts = [self.kernel]
        if self.blur_sigma:
            parts.append(f"blur {self.blur_sigma:g}")
        if self.noise_sigma:
            parts.append(f"noise {self.noise_sigma:g}")
        if self.jpeg_quality is not None:
            parts.append(f"JPEG {self.jpeg_quality}")
        return ", ".join(parts)


def degrade_test(hr, how=InputDegradation(), name=""):
    """uint8 LR input [H/8, W/8, 3] of one uint8 HR face, made as `how` (an InputDegradation) says.

    In this order: a Gaussian blur of the HR (`gaussian_blur`, sigma in HR px); the kernel (bilinear:
    the training recipe, `degrade`; area: one cv2.INTER_AREA shrink, the mean of each 8x8 block;
    bicubic: the real recipe's antialiased one); rounding to 8 bits; Gaussian noise drawn from
    TEST_NOISE_SEED and the face's `name`, so a face gets the same input on every run; a JPEG round
    trip (`jpeg_roundtrip`) of the small image, as a compressed thumbnail would arrive.
    """
    image = hr
    if how.blur_sigma:
        image = gaussian_blur(tf.constant(hr, tf.float32), tf.constant(how.blur_sigma, tf.float32),
                              blur_radius(how.blur_sigma)).numpy()
    if how.kernel == "area":
        h, w = hr.shape[:2]
        lr = cv2.resize(np.ascontiguousarray(image), (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
    else:
        lr = shrink(tf.constant(image, tf.float32), KERNELS.index(how.kernel)).numpy()
    lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    if how.noise_sigma:
        lr = add_noise(lr, how.noise_sigma, [TEST_NOISE_SEED, *seed_words(name)])
    return lr if how.jpeg_quality is None else jpeg_roundtrip(lr, how.jpeg_quality)


def match_input(sr, lr, sigma=0.0):
    """The output made to agree with its input at the input's scale (float32 [8n, 8n, 3]).

    Every degradation here makes each input pixel (near enough) the mean of
    its 8x8 block, but the generator's output, averaged back over 8x8 blocks,
    is off its input by a smooth colour and brightness error. That difference,
    upscaled bicubically, is added back (one back-projection step, Irani and
    Peleg 1991): detail finer than the input's pixels is the generator's, the
    rest the input's. On the unseen faces of docs/evaluation.md it raised
    every face's PSNR.

    A compressed or noisy input's pixels carry its JPEG blocks and noise,
    which the full step would put back; `sigma` > 0 (input px) smooths the
    difference with a Gaussian first, so only the colour and brightness error
    is corrected (docs/evaluation.md, "Correcting the output on compressed inputs").
    """
    sr = np.asarray(sr, np.float32)
    residual = np.asarray(lr, np.float32) - cv2.resize(sr, lr.shape[1::-1], interpolation=cv2.INTER_AREA)
    if sigma:
        residual = cv2.GaussianBlur(residual, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return sr + cv2.resize(residual, sr.shape[1::-1], interpolation=cv2.INTER_CUBIC)
