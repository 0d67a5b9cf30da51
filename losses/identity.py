"""Identity loss L_id of the paper (Sec. 3.2, eq. 4-6).

FaceNet (`models.identity.IdentityNetwork`, frozen) maps the HR target and the
SR output to identity vectors; a softmax turns each into a distribution over
the 128 (or 512) bins, p for HR and q for SR; L_id is their Jensen-Shannon
divergence

    JS(p, q) = 0.5 KL(p || m) + 0.5 KL(q || m),   m = (p + q) / 2,

summed over the bins and averaged over the batch (natural log, so
0 <= JS <= ln 2).

Which vector is softened: the bottleneck BEFORE FaceNet's L2 normalisation
(`IdentityNetwork.bottleneck`). The L2-normalised embedding has
entries of about +-1/sqrt(dim) (~0.09 for 128-d), so its softmax is nearly
uniform and the JS divergence between any two faces is ~0: measured with the
128-d FaceNet on CelebA, HR vs 8x bicubic gives L_id = 0.096 from the
bottleneck but 0.0015 from the normalised embedding (65x less; two different
people: 0.149 vs 0.0018), and the gradient w.r.t. SR is 70-100x smaller.

With the 128-d model's per-image prewhitening, L_id ignores global
brightness/contrast changes (an SR that is HR + 10 gives L_id ~ 1e-14); the
pixel and YUV losses take care of those.

HR gets no gradient (stop_gradient on p); SR does: call `identity_loss`
(or `identity_divergence`, per example) inside the training step's GradientTape.
"""
import math

import tensorflow as tf

_LOG2 = math.log(2.0)


@tf.function
def js_divergence(p_logits, q_logits):
    """Per-example Jensen-Shannon divergence of softmax(p_logits), softmax(q_logits).

    p_logits, q_logits: [N, K] (any float). Returns [N] float32, summed over
    the K bins, in nats (0 .. ln 2).

    Numerically safe without an epsilon: with d = log q - log p,
    log m = log p + softplus(d) - ln 2 = log q + softplus(-d) - ln 2, so
    KL(p||m) = sum p (ln 2 - softplus(d)) and KL(q||m) = sum q (ln 2 - softplus(-d));
    log-softmax, softplus and exp never overflow, a bin whose probability
    underflows to 0 contributes exactly 0, identical inputs give exactly 0 and
    swapping the arguments gives exactly the same value.
    """
    log_p = tf.nn.log_softmax(tf.cast(p_logits, tf.float32), axis=-1)
    log_q = tf.nn.log_softmax(tf.cast(q_logits, tf.float32), axis=-1)
    d = log_q - log_p
    kl_pm = tf.reduce_sum(tf.exp(log_p) * (_LOG2 - tf.nn.softplus(d)), axis=-1)
    kl_qm = tf.reduce_sum(tf.exp(log_q) * (_LOG2 - tf.nn.softplus(-d)), axis=-1)
    return 0.5 * kl_pm + 0.5 * kl_qm


def identity_divergence(id_net, hr, sr):
    """Per-example L_id (eq. 6): JS(softmax(f(HR)), softmax(f(SR))) of FaceNet's bottleneck f, float32 [N].

    id_net: a `models.identity.IdentityNetwork` (frozen FaceNet).
    hr, sr: float32 [N, H, W, 3] RGB on the [0, 255] scale. SR's vectors are
    differentiable, HR's are not.
    """
    # HR goes through FaceNet on its own, off every gradient path: in one batch
    # with SR, the backward pass would also run over the HR half (its gradient
    # all zeros), a FaceNet pass per image for nothing.
    p_logits = tf.stop_gradient(id_net.bottleneck(tf.convert_to_tensor(hr, tf.float32)))
    q_logits = id_net.bottleneck(tf.convert_to_tensor(sr, tf.float32))
    return js_divergence(p_logits, q_logits)


def identity_loss(id_net, hr, sr):
    """L_id (eq. 6) averaged over the batch: a float32 scalar (see `identity_divergence`)."""
    return tf.reduce_mean(identity_divergence(id_net, hr, sr))
