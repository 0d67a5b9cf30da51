"""Each loss term of eq. 11 against an independent NumPy computation."""
import numpy as np
import pytest
import tensorflow as tf

from losses import (
    L_ad,
    L_e,
    L_id,
    L_lc,
    L_rgb,
    LossWeights,
    discriminator_accuracy,
    discriminator_loss,
    generator_losses,
)

# eq. 7 of the paper (rows Y, U, V), which tf.image.rgb_to_yuv implements
PAPER_YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
RNG = np.random.default_rng(0)


def images(*shape):
    return RNG.uniform(0, 255, shape).astype(np.float32)


def bce(labels, logits):
    logits = logits.astype(np.float64)
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def test_rgb_and_yuv_losses_per_example():
    sr, hr = images(3, 8, 8, 3), images(3, 8, 8, 3)
    expected_rgb = ((sr.astype(np.float64) - hr) ** 2).reshape(3, -1).mean(1)
    np.testing.assert_allclose(L_rgb(sr, hr).numpy(), expected_rgb, rtol=1e-5)
    yuv = lambda x: x.astype(np.float64) @ PAPER_YUV.T  # noqa: E731
    expected_yuv = ((yuv(sr) - yuv(hr)) ** 2).reshape(3, -1).mean(1)
    # the paper rounds its matrix to 5 digits; TF uses the exact BT.601 one
    np.testing.assert_allclose(L_lc(sr, hr).numpy(), expected_yuv, rtol=2e-4)


def test_edge_loss_sums_the_three_scales():
    edges = [images(2, s, s, 1) for s in (4, 8, 16)]
    cannys = [RNG.choice([0.0, 255.0], (2, s, s, 1)).astype(np.float32) for s in (4, 8, 16)]
    expected = sum(((e.astype(np.float64) - c) ** 2).reshape(2, -1).mean(1) for e, c in zip(edges, cannys))
    np.testing.assert_allclose(L_e(edges, cannys).numpy(), expected, rtol=1e-5)
    one_scale_off = L_e([edges[0], cannys[1], cannys[2]], cannys).numpy()
    np.testing.assert_allclose(one_scale_off, ((edges[0] - cannys[0]) ** 2).reshape(2, -1).mean(1), rtol=1e-5)


def test_adversarial_and_discriminator_bce():
    real = RNG.normal(0, 5, (6, 1)).astype(np.float32)
    fake = RNG.normal(0, 5, (6, 1)).astype(np.float32)
    np.testing.assert_allclose(L_ad(fake).numpy(), bce(1, fake)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(discriminator_loss(real, fake).numpy(), (bce(1, real) + bce(0, fake))[:, 0],
                               rtol=1e-5)
    accuracy = discriminator_accuracy(real, fake).numpy()
    np.testing.assert_array_equal(accuracy, 0.5 * ((real > 0).astype(float) + (fake < 0))[:, 0])


class LinearIdentity:
    """A stand-in identity network: a fixed linear map of the flattened image."""

    def __init__(self, pixels, dim=5):
        self.matrix = RNG.normal(0, 1e-3, (pixels, dim)).astype(np.float32)

    def bottleneck(self, x):
        return tf.reshape(x, [tf.shape(x)[0], -1]) @ self.matrix


def js_numpy(p_logits, q_logits):
    softmax = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)  # noqa: E501,E731
    p, q = softmax(p_logits.astype(np.float64)), softmax(q_logits.astype(np.float64))
    m = (p + q) / 2
    return 0.5 * (p * np.log(p / m)).sum(1) + 0.5 * (q * np.log(q / m)).sum(1)


def test_identity_term_is_the_js_divergence_and_trains_sr():
    sr, hr = images(2, 4, 4, 3), images(2, 4, 4, 3)
    net = LinearIdentity(48)
    expected = js_numpy(hr.reshape(2, -1) @ net.matrix, sr.reshape(2, -1) @ net.matrix)
    np.testing.assert_allclose(L_id(net, sr, hr).numpy(), expected, rtol=1e-4)
    sr_var = tf.Variable(sr)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(L_id(net, sr_var, hr))
    assert np.abs(tape.gradient(loss, sr_var).numpy()).max() > 0


def batch_and_outputs():
    hr = images(2, 16, 16, 3)
    batch = {"hr": hr, "canny_32": images(2, 4, 4, 1), "canny_64": images(2, 8, 8, 1),
             "canny_128": images(2, 16, 16, 1)}
    outputs = (images(2, 16, 16, 3), images(2, 4, 4, 1), images(2, 8, 8, 1), images(2, 16, 16, 1))
    return batch, outputs


def test_composite_is_the_weighted_sum_of_every_term():
    batch, outputs = batch_and_outputs()
    net = LinearIdentity(16 * 16 * 3)
    fake = RNG.normal(0, 3, (2, 1)).astype(np.float32)
    weights = LossWeights(lambda_edge=0.3, lambda_yuv=0.7, lambda_id=15.0, beta=5e-3)
    losses = {k: float(v) for k, v in generator_losses(outputs, batch, weights, net, fake).items()}
    sr, e32, e64, e128 = outputs
    assert losses["L_rgb"] == pytest.approx(float(np.mean((sr - batch["hr"]) ** 2)), rel=1e-5)
    assert losses["L_e"] == pytest.approx(float(np.mean(L_e([e32, e64, e128], [batch["canny_32"],
                                          batch["canny_64"], batch["canny_128"]]))), rel=1e-6)
    assert losses["L_id"] == pytest.approx(float(np.mean(L_id(net, sr, batch["hr"]))), rel=1e-6)
    assert losses["L_ad"] == pytest.approx(float(np.mean(bce(1, fake))), rel=1e-5)
    expected = (losses["L_rgb"] + 0.3 * losses["L_e"] + 0.7 * losses["L_lc"] + 15.0 * losses["L_id"]
                + 5e-3 * losses["L_ad"])
    assert losses["G_total"] == pytest.approx(expected, rel=1e-6)


def test_zero_weight_terms_need_neither_facenet_nor_discriminator():
    batch, outputs = batch_and_outputs()
    losses = generator_losses(outputs, batch, LossWeights(lambda_id=0.0, beta=0.0))
    assert float(losses["L_id"]) == 0.0 and float(losses["L_ad"]) == 0.0
    with pytest.raises(ValueError, match="identity network"):
        generator_losses(outputs, batch, LossWeights(lambda_id=1.0))


def test_distributed_reduction_divides_by_the_global_batch():
    batch, outputs = batch_and_outputs()
    half = generator_losses(outputs, batch, LossWeights(),
                            reduce=lambda v: tf.nn.compute_average_loss(v, global_batch_size=4))
    full = generator_losses(outputs, batch, LossWeights())
    assert float(half["G_total"]) == pytest.approx(float(full["G_total"]) / 2, rel=1e-6)
