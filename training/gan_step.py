"""The GAN step: generator, discriminator, identity net, their optimizers, loss scaling and one update.

Distributed: --batchSize is the global batch; each replica's losses are averaged
over it (compute_average_loss) and the gradients summed over the replicas, so N
replicas make the same update as one device on the same batch. Gradients are
computed and applied in separate traced functions so the host can drop a batch
whose loss is NaN, or whose scaled gradients overflowed, before it touches the weights.
"""
import keras
import tensorflow as tf
from tqdm import tqdm

from losses import discriminator_accuracy, discriminator_loss, generator_losses
from models import Discriminator, build_generator, identity
from models.generator import MIXED_POLICY, dtype_policy
from training.errors import NonFiniteLoss


class LossScale:
    """Dynamic loss scaling of one network under float16: Keras' LossScaleOptimizer rule.

    An update whose gradients overflow is skipped and halves the scale; 2000
    good updates in a row double it. Not LossScaleOptimizer itself: under a
    strategy it tests the first replica's gradients before they are summed
    (another replica's overflow reaches the weights) and skips inside the graph;
    here the host decides from every replica's gradients. It starts at 2^8, not
    Keras' 2^15 (made for losses near 1): these losses are 1e3-1e5 on the
    [0, 255] scale, where 2^15 overflows the first updates (docs/training.md).
    """

    INITIAL = 2.0 ** 8
    GROWTH_STEPS = 2000

    def __init__(self, name):
        self.value = tf.Variable(self.INITIAL, trainable=False, name=f"{name}_loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{name}_good_steps")

    def update(self, finite):
        if not finite:
            self.value.assign(self.value / 2)
            self.good_steps.assign(0)
        elif int(self.good_steps.assign_add(1).numpy()) >= self.GROWTH_STEPS:
            self.value.assign(self.value * 2)
            self.good_steps.assign(0)


class GanStep:
    """A run's networks and optimizers (a StepConfig's, built in `strategy`'s scope) and its `train_step`."""

    def __init__(self, config, strategy):
        self.config = config
        self.strategy = strategy
        self.weights = {False: config.pre_gan_weights, True: config.gan_weights}
        with strategy.scope():
            with dtype_policy(MIXED_POLICY if config.mixed_precision else None):
                self.generator = build_generator(config.lr_size, config.output_nc)
                self.discriminator = Discriminator()
                self.discriminator(tf.zeros([1, config.crop_size, config.crop_size, config.output_nc]))
            self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
            d_beta_1, d_beta_2 = config.d_betas
            self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=d_beta_1, beta_2=d_beta_2,
                                                     epsilon=1e-8)
            # built now so a restore finds their slots instead of deferring it
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            # this worker's wish to stop (a signal), summed over the replicas in each generator step
            self.stop_vote = tf.Variable(0.0, trainable=False, name="stop_vote")
            self.loss_scale = {net: LossScale(net) for net in ("G", "D")} if config.mixed_precision else {}
            self.id_net = None
            if config.gan_weights.lambda_id > 0:
                # float32 even with --mixed_precision: a tenth of the step's work, and L_id compares
                # softmaxes of nearby embeddings. Looked up in its module at call time: the distribution
                # tests put a small stand-in network there.
                self.id_net = identity.load_identity_network(config.id_weights)
        self.stop_voted = False  # some worker asked to stop; every worker learns it in the same step
        self.skipped_batches = 0
        self.overflow_steps = 0

    # -- step functions (traced) -------------------------------------------
    def _reduce(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _sum(self, values):
        return {k: self.strategy.reduce("SUM", v, axis=None) for k, v in values.items()}

    def _gradients(self, tape, loss, variables, net):
        """(gradients, logs) of a replica's loss; with loss scaling, logs["overflow"] > 0 when they overflowed.

        `loss` must have been scaled by `self._scaled` inside `tape`.
        """
        grads = tape.gradient(loss, variables)
        if not self.loss_scale:
            return grads, {}
        scale = self.loss_scale[net].value
        grads = [None if g is None else g / scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
        return grads, {"overflow": 1.0 - tf.cast(finite, tf.float32)}

    def _scaled(self, loss, net):
        return loss * self.loss_scale[net].value if self.loss_scale else loss

    @tf.function
    def g_compute(self, batch, adversarial):
        def replica(batch):
            with tf.GradientTape() as tape:
                outputs = self.generator(batch["lr"], training=True)
                fake_logits = self.discriminator(outputs[0], training=False) if adversarial else None
                losses = generator_losses(outputs, batch, self.weights[adversarial], self.id_net,
                                          fake_logits, self._reduce)
                target = self._scaled(losses["G_total"], "G")
            grads, logs = self._gradients(tape, target, self.generator.trainable_variables, "G")
            return {**losses, **logs, "stop": self.stop_vote.read_value()}, grads

        losses, grads = self.strategy.run(replica, args=(batch,))
        return self._sum(losses), grads

    @tf.function
    def d_compute(self, batch):
        def replica(batch):
            sr = self.generator(batch["lr"], training=False)[0]
            with tf.GradientTape() as tape:
                real = self.discriminator(batch["hr"], training=True)
                fake = self.discriminator(sr, training=True)
                loss = self._reduce(discriminator_loss(real, fake))
                target = self._scaled(loss, "D")
            grads, logs = self._gradients(tape, target, self.discriminator.trainable_variables, "D")
            return {"D_loss": loss, "D_accuracy": self._reduce(discriminator_accuracy(real, fake)), **logs}, grads

        losses, grads = self.strategy.run(replica, args=(batch,))
        return self._sum(losses), grads

    @tf.function
    def g_apply(self, grads):
        self._apply(self.g_optimizer, self.generator, grads)

    @tf.function
    def d_apply(self, grads):
        self._apply(self.d_optimizer, self.discriminator, grads)

    def _apply(self, optimizer, model, grads):
        def replica(grads):
            # identity puts each gradient on this replica's device: with one replica per worker the step gets
            # plain tensors without one, and the optimizer's all-reduce needs it
            grads = [None if g is None else tf.identity(g) for g in grads]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        self.strategy.run(replica, args=(grads,))

    # -- one iteration -----------------------------------------------------
    def train_step(self, batch, adversarial, iteration, stop_wish=False):
        """Generator update `iteration` + 1, after D_steps_per_G discriminator ones if `adversarial` (the GAN phase).

        Returns the losses as floats, or None when the batch was skipped (--skip_nan,
        or a loss scale overflow under --mixed_precision). `stop_wish`: this worker
        wants to stop; `stop_voted` tells whether any worker did.
        """
        logs = {"D_loss": 0.0, "D_accuracy": float("nan")}
        if adversarial:
            for _ in range(self.config.d_steps_per_g):
                d_logs, d_grads = self.d_compute(batch)
                d_logs = {k: float(v) for k, v in d_logs.items()}
                if not self._usable(d_logs, "D", iteration):
                    return None
                self.d_apply(d_grads)
            logs.update(d_logs)
        self.stop_vote.assign(1.0 if stop_wish else 0.0)
        g_logs, g_grads = self.g_compute(batch, adversarial)
        g_logs = {k: float(v) for k, v in g_logs.items()}
        self.stop_voted = self.stop_voted or g_logs.pop("stop") > 0
        if not self._usable(g_logs, "G", iteration):
            return None
        self.g_apply(g_grads)
        logs.update(g_logs)
        logs["beta"] = self.weights[adversarial].beta
        return logs

    def _usable(self, logs, net, iteration):
        """Whether the step's gradients may be applied; a NaN loss is _finite's case, an overflow the scaler's."""
        overflow = logs.pop("overflow", 0.0) > 0
        if not self._finite(logs, iteration):
            return False
        if self.loss_scale:
            self.loss_scale[net].update(not overflow)
            self.overflow_steps += overflow
        return not overflow

    def _finite(self, logs, iteration):
        bad = [k for k, v in logs.items() if k != "D_accuracy" and not (abs(v) < float("inf"))]
        if not bad:
            return True
        where = f"iteration {iteration + 1}: {', '.join(bad)} = " + ", ".join(str(logs[k]) for k in bad)
        if self.config.skip_nan:
            self.skipped_batches += 1
            tqdm.write(f"skipped the batch of {where}")
            return False
        raise NonFiniteLoss(where)
