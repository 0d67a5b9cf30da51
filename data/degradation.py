"""HR -> LR degradation of the released code, in TensorFlow.

The released code makes the 16x16 input by three successive 2x
`cv2.resize(..., INTER_LINEAR)` steps on uint8 images. At exactly half size
OpenCV's INTER_LINEAR averages each 2x2 block and rounds half up, so each step
is a 2x2 average pool followed by floor(x + 0.5). Doing it in TF keeps one
function for test.py (eager, on a batch) and the tf.data pipeline (in graph).
"""
import tensorflow as tf

SCALE = 8
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
