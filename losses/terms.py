"""The loss terms of eq. 11, per example, on the [0, 255] scale of the released code.

Every term returns a [batch] vector: the caller reduces it, with a plain mean
on one device or `tf.nn.compute_average_loss` under a tf.distribute strategy
(so a replica's share is divided by the global batch, not its own).
"""
import tensorflow as tf

from losses.identity import identity_divergence


def _per_example_mse(a, b):
    return tf.reduce_mean(tf.reshape(tf.math.squared_difference(a, b), [tf.shape(a)[0], -1]), axis=1)


@tf.function
def L_rgb(sr, hr):
    """Pixel MSE (the code's `MSE`)."""
    return _per_example_mse(sr, hr)


@tf.function
def L_e(edges, cannys):
    """Edge loss: the per-scale MSEs of the 32, 64 and 128 edge maps vs Canny, summed (`MSE_edge`)."""
    return tf.add_n([_per_example_mse(e, c) for e, c in zip(edges, cannys)])


@tf.function
def L_lc(sr, hr):
    """Luminance-chrominance loss: MSE in YUV (`MSE_YUV`). rgb_to_yuv is linear, so [0, 255] in is fine."""
    return _per_example_mse(tf.image.rgb_to_yuv(sr), tf.image.rgb_to_yuv(hr))


def L_id(id_net, sr, hr):
    """Identity loss (eq. 6): JS divergence of the softmaxed FaceNet vectors of HR and SR.

    Not a tf.function of its own: `id_net` is a Python object, and the caller's
    step function traces it inside the tape so the generator gets its gradient.
    """
    return identity_divergence(id_net, hr, sr)


@tf.function
def L_ad(fake_logits):
    """Non-saturating adversarial loss of the generator: BCE(1, D(SR))."""
    return tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits)[:, 0]


@tf.function
def discriminator_loss(real_logits, fake_logits):
    """BCE(1, D(HR)) + BCE(0, D(SR)), the released code's D loss."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return (real + fake)[:, 0]


@tf.function
def discriminator_accuracy(real_logits, fake_logits):
    """Per example: the fraction of {HR, SR} the discriminator classifies right (0, 0.5 or 1)."""
    right = tf.cast(real_logits > 0, tf.float32) + tf.cast(fake_logits < 0, tf.float32)
    return 0.5 * right[:, 0]
