"""HR -> LR degradation of the released code, in TensorFlow.

The released code makes the 16x16 input by three successive 2x
`cv2.resize(..., INTER_LINEAR)` steps on uint8 images. At exactly half size
OpenCV's INTER_LINEAR averages each 2x2 block and rounds half up, so each step
is a 2x2 average pool followed by floor(x + 0.5). Doing it in TF keeps one
function for test.py (eager, on a batch) and the tf.data pipeline (in graph).
"""
import cv2
import numpy as np
import tensorflow as tf

from data.constants import DEGRADATIONS, JPEG_QUALITY, SCALE

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


def jpeg_roundtrip(image, quality=JPEG_QUALITY):
    """uint8 RGB image encoded as baseline JPEG at ``quality`` (OpenCV's libjpeg) and decoded."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding of a {image.shape} image failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def degrade_test(hr, kind="bilinear"):
    """uint8 LR input [H/8, W/8, 3] of one uint8 HR face by one of DEGRADATIONS.

    bilinear: the training recipe (`degrade`); area: one cv2.INTER_AREA shrink
    (the mean of each 8x8 block); jpeg: bilinear, then a JPEG_QUALITY round trip
    of the small image, as a compressed thumbnail would arrive.
    """
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(DEGRADATIONS)}")
    if kind == "area":
        h, w = hr.shape[:2]
        return cv2.resize(np.ascontiguousarray(hr), (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
    lr = degrade(hr).numpy().astype(np.uint8)
    return jpeg_roundtrip(lr) if kind == "jpeg" else lr


def match_input(sr, lr):
    """The output made to agree with its input at the input's scale (float32 [8n, 8n, 3]).

    Every degradation here makes each input pixel (near enough) the mean of
    its 8x8 block, but the generator's output, averaged back over 8x8 blocks,
    is off its input by a smooth colour and brightness error. That difference,
    upscaled bicubically, is added back (one back-projection step, Irani and
    Peleg 1991): detail finer than the input's pixels is the generator's, the
    rest the input's. On the unseen faces of docs/evaluation.md it raised
    every face's PSNR.
    """
    sr = np.asarray(sr, np.float32)
    residual = np.asarray(lr, np.float32) - cv2.resize(sr, lr.shape[1::-1], interpolation=cv2.INTER_AREA)
    return sr + cv2.resize(residual, sr.shape[1::-1], interpolation=cv2.INTER_CUBIC)
