"""L_total = L_rgb + lambda_edge L_e + lambda_yuv L_lc + lambda_id L_id + beta L_ad (eq. 11)."""
from dataclasses import dataclass

import tensorflow as tf

from losses.terms import L_ad, L_e, L_id, L_lc, L_rgb


@dataclass(frozen=True)
class LossWeights:
    lambda_edge: float = 0.3
    lambda_yuv: float = 1.0
    lambda_id: float = 0.0
    beta: float = 0.0

    @classmethod
    def from_options(cls, opt, adversarial):
        """The weights of one phase: beta is --ad_r in the GAN phase, 0 before it."""
        return cls(opt.lambda_edge, opt.lambda_yuv, opt.lambda_id, opt.ad_r if adversarial else 0.0)


def mean_reduce(per_example):
    return tf.reduce_mean(per_example)


def generator_losses(outputs, batch, weights, id_net=None, fake_logits=None, reduce=mean_reduce):
    """Every term of eq. 11 and their weighted sum, as a dict of scalars.

    outputs: the generator's (sr, edge_32, edge_64, edge_128); batch: the
    pipeline's dict (hr, canny_32, canny_64, canny_128). A term whose weight
    is 0 is not computed at all (reported as 0), so `--lambda_id 0` needs no
    FaceNet and the first phase needs no discriminator pass. `reduce` maps a
    per-example vector to the scalar the optimizer sees.
    """
    if weights.lambda_id > 0 and id_net is None:
        raise ValueError("lambda_id > 0 needs an identity network")
    sr, *edges = outputs
    hr = batch["hr"]
    cannys = [batch["canny_32"], batch["canny_64"], batch["canny_128"]]
    zero = tf.constant(0.0)
    losses = {
        "L_rgb": reduce(L_rgb(sr, hr)),
        "L_e": reduce(L_e(edges, cannys)),
        "L_lc": reduce(L_lc(sr, hr)),
        "L_id": reduce(L_id(id_net, sr, hr)) if weights.lambda_id > 0 else zero,
        "L_ad": reduce(L_ad(fake_logits)) if weights.beta > 0 else zero,
    }
    losses["G_total"] = (losses["L_rgb"] + weights.lambda_edge * losses["L_e"]
                         + weights.lambda_yuv * losses["L_lc"] + weights.lambda_id * losses["L_id"]
                         + weights.beta * losses["L_ad"])
    return losses
