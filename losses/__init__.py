from losses.composite import LossWeights, generator_losses, mean_reduce
from losses.terms import L_ad, L_e, L_id, L_lc, L_rgb, discriminator_accuracy, discriminator_loss

__all__ = ["LossWeights", "generator_losses", "mean_reduce", "L_ad", "L_e", "L_id", "L_lc", "L_rgb",
           "discriminator_accuracy", "discriminator_loss"]
