"""Train EIPNet: generator + discriminator, the paper's composite loss, resumable.

    python train.py --train_path FACES --dataset_mode celeba --batchSize 16
    python train.py ... --continue_train          # resume exactly where it stopped
    python train.py ... --strategy mirrored       # every visible GPU (README: multi-worker)

Everything goes to <checkpoint_path>/<save_path>/: ckpt/ (training checkpoints),
generator.weights.h5 (latest generator, for test.py), best/ (best validation
PSNR), logs/ (TensorBoard), loss_log.txt, validation.csv and validation.png,
loss_curves.png, opt.txt / opt.json.

Distributed (--strategy): --batchSize is the global batch; each step's losses
are averaged over it (compute_average_loss) and the gradients summed over the
replicas, so N replicas make the same update as one device on the same batch.
The data position (epoch, global batches done) means the same under any
number of replicas, so a run resumes under another one. Only the chief writes
files; the loop's decisions (skip, stop) come from values reduced over all
replicas, so every worker takes the same ones.
"""
import csv
import json
import math
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time

from options.train_options import D_BETAS, PAPER_GAN_START, TrainOptions

PROG = "train.py"
# loss_log.txt fields: the released code's, in its order, then the identity term it lacked
LOG_FIELDS = (("G_total", "G_total"), ("MSE", "L_rgb"), ("EDGE", "L_e"), ("YUV", "L_lc"),
              ("G_GAN", "L_ad"), ("D_GAN", "D_loss"), ("ID", "L_id"))
VAL_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y")
# what a run writes in its folder: finding any of them means the folder holds a run
RUN_OUTPUTS = ("generator.weights.h5", "ckpt", "best", "logs", "loss_log.txt", "validation.csv", "validation.png",
               "loss_curves.png", "opt.txt", "opt.json")
GRID_IMAGES = 4
VAL_BATCH = 16


class TrainingError(RuntimeError):
    """A problem the user must fix; reported as one line."""


def fail(message, code=1):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _atomic_write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_loss_log(path):
    """{field: [(iteration, value)]} of a loss_log.txt."""
    history = {}
    if not os.path.exists(path):
        return history
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"\(epoch: (\d+), iters: (\d+)\)(.*)", line)
            if not match:
                continue
            iteration = int(match.group(2))
            for name, value in re.findall(r"(\w+): (\S+)", match.group(3)):
                history.setdefault(name, []).append((iteration, float(value)))
    return history


def truncate_logs(folder, iteration):
    """Drop log lines written after `iteration` (by a run that died before its next save)."""
    for name, key in (("loss_log.txt", lambda l: re.match(r"\(epoch: \d+, iters: (\d+)\)", l)),
                      ("validation.csv", lambda l: re.match(r"(\d+),", l))):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        kept = [l for l in lines if not (key(l) and int(key(l).group(1)) > iteration)]
        if len(kept) != len(lines):
            _atomic_write_text(path, "".join(kept))


def claim_run_folder(opt, chief=True):
    """Refuse a new run in a folder holding another run's outputs; with --overwrite the chief deletes them.

    --continue_train resumes the run there, so it may write into it. Other workers look for
    checkpoints only: the chief writes its logs there as soon as it starts, checkpoints much later.
    """
    folder = opt.experiment_dir
    found = [name for name in (RUN_OUTPUTS if chief else ("ckpt",)) if os.path.lexists(os.path.join(folder, name))]
    if not found or opt.continue_train:
        return
    if not opt.overwrite:
        raise TrainingError(f"{folder} already holds a run ({', '.join(found)}): resume it with --continue_train, "
                            f"train into a new --save_path, or replace it with --overwrite")
    if chief:
        for name in found:
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def pause_for_tests(iteration):
    """Test-only (EIPNET_TEST_SAVE_PAUSE=FOLDER): hold the save of `iteration` halfway until FOLDER/saving-N goes.

    The checkpoint is written and recorded, the generator not yet exported: a test kills or
    signals the run at that known point instead of racing a save with a timer.
    """
    folder = os.environ.get("EIPNET_TEST_SAVE_PAUSE")
    if not folder:
        return
    marker = os.path.join(folder, f"saving-{iteration}")
    open(marker, "w").close()
    while os.path.exists(marker):
        time.sleep(0.01)


def resume_args(argv):
    """The arguments that resume the run ``argv`` started: --continue_train in, --init_weights out.

    --init_weights only seeds a new run (the parser refuses it beside --continue_train); its
    weights are in the checkpoint now. argparse accepts unambiguous prefixes, so they count too.
    """
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name, eq, _ = arg.partition("=")
        if len(name) > 2 and "--init_weights".startswith(name):
            skip = not eq
        elif not (len(name) > 2 and "--continue_train".startswith(name)):
            args.append(arg)
    return args + ["--continue_train"]


class LossScale:
    """Dynamic loss scaling of one network under float16: Keras' LossScaleOptimizer rule.

    An update whose gradients overflow is skipped and halves the scale; 2000
    good updates in a row double it. Not LossScaleOptimizer itself: under a
    strategy it tests the first replica's gradients before they are summed
    (another replica's overflow reaches the weights) and skips inside the graph;
    here the host decides from every replica's gradients. It starts at 2^8, not
    Keras' 2^15 (made for losses near 1): these losses are 1e3-1e5 on the
    [0, 255] scale, and from 2^15 the first six updates overflowed.
    """

    INITIAL = 2.0 ** 8
    GROWTH_STEPS = 2000

    def __init__(self, tf, name):
        self.value = tf.Variable(self.INITIAL, trainable=False, name=f"{name}_loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{name}_good_steps")

    def update(self, finite):
        if not finite:
            self.value.assign(self.value / 2)
            self.good_steps.assign(0)
        elif int(self.good_steps.assign_add(1).numpy()) >= self.GROWTH_STEPS:
            self.value.assign(self.value * 2)
            self.good_steps.assign(0)


def make_strategy(name):
    """The tf.distribute strategy of --strategy (before any other TF op: multi-worker needs that)."""
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainingError("--strategy multi_worker needs TF_CONFIG: the cluster's workers and this "
                                "one's task (README)")
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except ValueError as err:
            raise TrainingError(f"bad TF_CONFIG: {str(err).splitlines()[0]}")
    return tf.distribute.get_strategy()


class Trainer:
    """One training run: its networks, optimizers, data position and logs."""

    def __init__(self, opt, strategy=None):
        import keras
        import tensorflow as tf

        from data.pipeline import TrainData
        from losses import LossWeights
        from models import Discriminator, build_generator
        from models.generator import MIXED_POLICY, dtype_policy

        self.opt = opt
        self.tf = tf
        self.folder = opt.experiment_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = self.strategy.extended.should_checkpoint
        # before anything slow
        claim_run_folder(opt, self.chief)
        replicas = self.strategy.num_replicas_in_sync
        if opt.batchSize % replicas:
            raise TrainingError(f"--batchSize {opt.batchSize} does not split evenly over {replicas} replicas: "
                                f"give a multiple of {replicas}")
        keras.utils.set_random_seed(opt.seed)

        self.data = TrainData(opt)
        self.data.warm_cache()
        self.steps_per_epoch = self.data.steps_per_epoch
        if self.steps_per_epoch < 1:
            raise TrainingError(f"no full batch of {opt.batchSize} readable images under {opt.train_path}")
        self.total_iters = opt.niter or opt.epoch * self.steps_per_epoch
        self.gan_start = (opt.gan_start_iter if opt.gan_start_iter >= 0
                          else int(round(PAPER_GAN_START * self.total_iters)))
        self.weights = {phase: LossWeights.from_options(opt, phase) for phase in (False, True)}

        with self.strategy.scope():
            with dtype_policy(MIXED_POLICY if opt.mixed_precision else None):
                self.generator = build_generator(opt.lr_size, opt.output_nc)
                self.discriminator = Discriminator()
                self.discriminator(tf.zeros([1, opt.crop_size, opt.crop_size, opt.output_nc]))
            self.g_optimizer = keras.optimizers.Adam(opt.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
            d_beta_1, d_beta_2 = D_BETAS[opt.d_betas]
            self.d_optimizer = keras.optimizers.Adam(opt.learning_rate, beta_1=d_beta_1, beta_2=d_beta_2,
                                                     epsilon=1e-8)
            # built now so a restore finds their slots instead of deferring it
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name="position")
            # this worker's wish to stop (a signal), summed over the replicas in each generator step
            self.stop_vote = tf.Variable(0.0, trainable=False, name="stop_vote")
            self.loss_scale = ({net: LossScale(tf, net) for net in ("G", "D")} if opt.mixed_precision else {})
            self.id_net = None
            if opt.lambda_id > 0:
                # float32 even with --mixed_precision: a tenth of the step's work, and L_id compares
                # softmaxes of nearby embeddings
                from models.identity import load_identity_network
                self.id_net = load_identity_network(opt.id_weights)

        self.state = dict(generator=self.generator, discriminator=self.discriminator, g_optimizer=self.g_optimizer,
                          d_optimizer=self.d_optimizer, iteration=self.iteration, epoch=self.epoch,
                          position=self.position)
        if self.loss_scale:
            self.state["loss_scale"] = tf.train.Checkpoint(**{
                f"{net}_{part}": getattr(scale, part) for net, scale in self.loss_scale.items()
                for part in ("value", "good_steps")})
        self.checkpoint = tf.train.Checkpoint(**self.state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.folder, "ckpt"),
                                                  max_to_keep=opt.max_to_keep, checkpoint_name="ckpt")
        self.g_compute = tf.function(self._g_compute)
        self.d_compute = tf.function(self._d_compute)
        self.g_apply = tf.function(self._apply(self.g_optimizer, self.generator))
        self.d_apply = tf.function(self._apply(self.d_optimizer, self.discriminator))
        self.predict = tf.function(lambda lr: self.generator(lr, training=False))
        self.stop_signal = None
        self.stopping = False
        self.skipped_batches = 0
        self.overflow_steps = 0
        self.best_psnr = float("-inf")
        self.last_logged = None

    # -- step functions (traced) -------------------------------------------
    def _reduce(self, per_example):
        return self.tf.nn.compute_average_loss(per_example, global_batch_size=self.opt.batchSize)

    def _sum(self, values):
        return {k: self.strategy.reduce("SUM", v, axis=None) for k, v in values.items()}

    def _gradients(self, tape, loss, variables, net):
        """(gradients, logs) of a replica's loss; with loss scaling, logs["overflow"] > 0 when they overflowed.

        `loss` must have been scaled by `self._scaled` inside `tape`.
        """
        tf = self.tf
        grads = tape.gradient(loss, variables)
        if not self.loss_scale:
            return grads, {}
        scale = self.loss_scale[net].value
        grads = [None if g is None else g / scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
        return grads, {"overflow": 1.0 - tf.cast(finite, tf.float32)}

    def _scaled(self, loss, net):
        return loss * self.loss_scale[net].value if self.loss_scale else loss

    def _g_compute(self, batch, adversarial):
        from losses import generator_losses

        def replica(batch):
            with self.tf.GradientTape() as tape:
                outputs = self.generator(batch["lr"], training=True)
                fake_logits = self.discriminator(outputs[0], training=False) if adversarial else None
                losses = generator_losses(outputs, batch, self.weights[adversarial], self.id_net,
                                          fake_logits, self._reduce)
                target = self._scaled(losses["G_total"], "G")
            grads, logs = self._gradients(tape, target, self.generator.trainable_variables, "G")
            return {**losses, **logs, "stop": self.stop_vote.read_value()}, grads

        losses, grads = self.strategy.run(replica, args=(batch,))
        return self._sum(losses), grads

    def _d_compute(self, batch):
        from losses import discriminator_accuracy, discriminator_loss

        def replica(batch):
            sr = self.generator(batch["lr"], training=False)[0]
            with self.tf.GradientTape() as tape:
                real = self.discriminator(batch["hr"], training=True)
                fake = self.discriminator(sr, training=True)
                loss = self._reduce(discriminator_loss(real, fake))
                target = self._scaled(loss, "D")
            grads, logs = self._gradients(tape, target, self.discriminator.trainable_variables, "D")
            return {"D_loss": loss, "D_accuracy": self._reduce(discriminator_accuracy(real, fake)), **logs}, grads

        losses, grads = self.strategy.run(replica, args=(batch,))
        return self._sum(losses), grads

    def _apply(self, optimizer, model):
        # a separate step from the gradients, so a NaN batch can be dropped before it touches the weights
        def replica(grads):
            # identity puts each gradient on this replica's device: with one replica per worker the step gets
            # plain tensors without one, and the optimizer's all-reduce needs it
            grads = [None if g is None else self.tf.identity(g) for g in grads]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

        def apply(grads):
            self.strategy.run(replica, args=(grads,))
        return apply

    # -- one iteration -----------------------------------------------------
    def train_step(self, batch):
        """One generator update (after D_steps_per_G discriminator ones in the GAN phase).

        Returns the losses as floats, or None when the batch was skipped (--skip_nan,
        or a loss scale overflow under --mixed_precision).
        """
        adversarial = int(self.iteration.numpy()) >= self.gan_start
        logs = {"D_loss": 0.0, "D_accuracy": float("nan")}
        if adversarial:
            for _ in range(self.opt.D_steps_per_G):
                d_logs, d_grads = self.d_compute(batch)
                d_logs = {k: float(v) for k, v in d_logs.items()}
                if not self._usable(d_logs, "D"):
                    return None
                self.d_apply(d_grads)
            logs.update(d_logs)
        self.stop_vote.assign(0.0 if self.stop_signal is None else 1.0)
        g_logs, g_grads = self.g_compute(batch, adversarial)
        g_logs = {k: float(v) for k, v in g_logs.items()}
        self.stopping = self.stopping or g_logs.pop("stop") > 0
        if not self._usable(g_logs, "G"):
            return None
        self.g_apply(g_grads)
        logs.update(g_logs)
        logs["beta"] = self.weights[adversarial].beta
        return logs

    def _usable(self, logs, net):
        """Whether the step's gradients may be applied; a NaN loss is _finite's case, an overflow the scaler's."""
        overflow = logs.pop("overflow", 0.0) > 0
        if not self._finite(logs):
            return False
        if self.loss_scale:
            self.loss_scale[net].update(not overflow)
            self.overflow_steps += overflow
        return not overflow

    def _finite(self, logs):
        bad = [k for k, v in logs.items() if k != "D_accuracy" and not (abs(v) < float("inf"))]
        if not bad:
            return True
        where = f"iteration {int(self.iteration.numpy()) + 1}: {', '.join(bad)} = " + \
                ", ".join(str(logs[k]) for k in bad)
        if self.opt.skip_nan:
            self.skipped_batches += 1
            self.log(f"skipped the batch of {where}")
            return False
        latest = self.manager.latest_checkpoint
        raise TrainingError(f"{where}; stopped without saving"
                            + (f", the last good checkpoint is {latest} (resume with --continue_train)"
                               if latest else ", no checkpoint was saved yet")
                            + "; --skip_nan skips such batches instead")

    # -- start, resume ---------------------------------------------------------
    def prepare_folder(self):
        """Fail before training when the run folder is unusable."""
        if self.chief:  # the others write nothing there
            self._check_writable()

    def _check_writable(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
            probe = os.path.join(self.folder, ".write_test")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as err:
            raise TrainingError(f"cannot write to {self.folder}: {err.strerror or err}")
        variables = self.checkpoint_size()
        free = shutil.disk_usage(self.folder).free
        if free < 2 * variables:
            raise TrainingError(f"{free / 2**30:.1f} GiB free under {self.folder}; a checkpoint takes "
                                f"{variables / 2**30:.1f} GiB and saving needs twice that")

    def checkpoint_size(self):
        import numpy as np

        variables = (self.generator.weights + self.discriminator.weights + self.g_optimizer.variables
                     + self.d_optimizer.variables)
        return sum(int(np.prod(v.shape)) * self.tf.as_dtype(v.dtype).size for v in variables)

    def pick_checkpoint(self):
        """The checkpoint --continue_train resumes: latest, or the one --which_epoch/--which_iter names."""
        opt = self.opt
        checkpoints = self.manager.checkpoints
        if not checkpoints:
            raise TrainingError(f"nothing to resume: no checkpoint in {os.path.join(self.folder, 'ckpt')}"
                                + ("" if self.chief else " (every worker reads the chief's checkpoints: "
                                                         "--checkpoint_path must be a shared folder)"))
        if opt.which_iter is None and opt.which_epoch is None:
            return checkpoints[-1]
        saved = []
        for prefix in checkpoints:
            reader = self.tf.train.load_checkpoint(prefix)
            saved.append((prefix, int(reader.get_tensor("iteration/.ATTRIBUTES/VARIABLE_VALUE")),
                          int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")),
                          int(reader.get_tensor("position/.ATTRIBUTES/VARIABLE_VALUE"))))
        if opt.which_iter is not None:
            found = [p for p, it, _, _ in saved if it == opt.which_iter]
            what, have = f"iteration {opt.which_iter}", ", ".join(str(it) for _, it, _, _ in saved)
        else:
            found = [p for p, _, ep, pos in saved if ep == opt.which_epoch and pos == 0]
            what = f"the end of epoch {opt.which_epoch}"
            have = ", ".join(f"epoch {ep}" for _, _, ep, pos in saved if pos == 0) or "none at an epoch end"
        if not found:
            raise TrainingError(f"no checkpoint saved at {what} in {self.manager.directory} (kept: {have})")
        return found[-1]

    def start(self):
        """Restore (--continue_train) or initialise (--init_weights) the run; returns a status line."""
        from models import load_generator

        opt = self.opt
        if opt.continue_train:
            prefix = self.pick_checkpoint()
            root = self.checkpoint
            if "loss_scale" in self.state and not any(
                    name.startswith("loss_scale/") for name, _ in self.tf.train.list_variables(prefix)):
                # a run saved without --mixed_precision: the loss scales start afresh
                root = self.tf.train.Checkpoint(**{k: v for k, v in self.state.items() if k != "loss_scale"})
            try:
                root.read(prefix).assert_existing_objects_matched().expect_partial()
            except (self.tf.errors.OpError, AssertionError, ValueError) as err:
                raise TrainingError(f"cannot restore {prefix}: {str(err).splitlines()[0]}")
            if self.chief:
                truncate_logs(self.folder, int(self.iteration.numpy()))
            best = os.path.join(self.folder, "best", "best.json")
            if os.path.exists(best):
                with open(best, encoding="utf-8") as f:
                    self.best_psnr = json.load(f)["psnr"]
            status = f"resumed {prefix} (iteration {int(self.iteration.numpy())})"
            saved_rate = float(self.g_optimizer.learning_rate.numpy())
            if not math.isclose(saved_rate, opt.learning_rate, rel_tol=1e-6):  # stored as float32
                # the checkpoint holds the rate the run had; a changed --learning_rate is the user's decision
                for optimizer in (self.g_optimizer, self.d_optimizer):
                    optimizer.learning_rate = opt.learning_rate
                status += f"; learning rate now {opt.learning_rate:g} (it was {saved_rate:g})"
            return status
        if opt.init_weights:
            self.generator.set_weights(load_generator(opt.init_weights, opt.lr_size, opt.output_nc).get_weights())
            return f"generator initialised from {opt.init_weights}"
        return "new run"

    # -- outputs ---------------------------------------------------------------
    def log(self, message):
        from tqdm import tqdm
        tqdm.write(message)

    def save(self):
        from models import save_generator
        from visualizer import loss_curves

        iteration = int(self.iteration.numpy())
        if not self.chief:
            # TF's multi-worker rule: every worker saves (a save may need them all), only the chief's is kept
            temp = tempfile.mkdtemp(prefix="eipnet-worker-")
            try:
                self.checkpoint.write(os.path.join(temp, "ckpt"))
            finally:
                shutil.rmtree(temp, ignore_errors=True)
            return None
        # saved already: an epoch end that was also a --save_iter_freq point, or a run resumed at its last
        # checkpoint (killed before the export below, which must still happen)
        if not (self.manager.latest_checkpoint and self.manager.latest_checkpoint.endswith(f"-{iteration}")):
            self.manager.save(checkpoint_number=iteration)
            pause_for_tests(iteration)
        prefix = self.manager.latest_checkpoint
        export = os.path.join(self.folder, "generator.weights.h5")
        save_generator(self.generator, export + ".tmp.weights.h5")
        os.replace(export + ".tmp.weights.h5", export)
        history = parse_loss_log(os.path.join(self.folder, "loss_log.txt"))
        if history:
            loss_curves(history, os.path.join(self.folder, "loss_curves.png"))
        return prefix

    def write_loss_line(self, logs):
        iteration = int(self.iteration.numpy())
        if iteration == self.last_logged:
            return
        self.last_logged = iteration
        # the epoch being trained, 1-based; at an epoch's end, the one just finished
        epoch = int(self.epoch.numpy()) + (1 if int(self.position.numpy()) > 0 else 0)
        line = (f"(epoch: {epoch}, iters: {iteration}) "
                + " ".join(f"{name}: {logs.get(key, 0.0):.4f}" for name, key in LOG_FIELDS))
        with open(os.path.join(self.folder, "loss_log.txt"), "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def write_scalars(self, logs):
        tf = self.tf
        with self.writer.as_default(step=int(self.iteration.numpy())):
            for key, value in logs.items():
                if value == value:  # D accuracy is NaN before the GAN phase
                    tf.summary.scalar(f"loss/{key}" if key.startswith(("L_", "G_", "D_loss")) else key, value)
            tf.summary.scalar("learning_rate", float(self.opt.learning_rate))

    def load_validation(self):
        from data.images import upscale_bicubic
        from data.pipeline import load_eval_set
        from metrics.quality import quality

        names, hr, lr = load_eval_set(self.opt, self.opt.val_path or self.opt.test_path,
                                      limit=self.opt.val_images or None)
        self.val_hr, self.val_lr = hr, lr
        bicubic = [upscale_bicubic(l.astype("uint8"), self.opt.crop_size // self.opt.lr_size) for l in lr]
        rows = [quality(b, h) for b, h in zip(bicubic, hr)]
        self.val_bicubic = {k: float(sum(r[k] for r in rows) / len(rows)) for k in VAL_KEYS}
        self.val_names = names

    def super_resolve_validation(self):
        import numpy as np
        outputs = [self.predict(self.tf.constant(self.val_lr[i:i + VAL_BATCH]))
                   for i in range(0, len(self.val_lr), VAL_BATCH)]
        return [np.concatenate([o[k].numpy() for o in outputs]) for k in range(4)]

    def validate(self):
        """Mean PSNR/SSIM on the validation faces; keeps the best generator."""
        from metrics.quality import quality
        from utils import to_uint8
        from models import save_generator
        from visualizer import validation_curve

        sr, *_ = self.super_resolve_validation()
        rows = [quality(to_uint8(s), h) for s, h in zip(sr, self.val_hr)]
        scores = {k: float(sum(r[k] for r in rows) / len(rows)) for k in VAL_KEYS}
        iteration = int(self.iteration.numpy())
        path = os.path.join(self.folder, "validation.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(("iteration",) + VAL_KEYS + tuple(f"bicubic_{k}" for k in VAL_KEYS))
            writer.writerow([iteration] + [f"{scores[k]:.4f}" for k in VAL_KEYS]
                            + [f"{self.val_bicubic[k]:.4f}" for k in VAL_KEYS])
        validation_curve(path, os.path.join(self.folder, "validation.png"))
        with self.writer.as_default(step=iteration):
            for k in VAL_KEYS:
                self.tf.summary.scalar(f"val/{k}", scores[k])
        if scores["psnr"] > self.best_psnr:
            self.best_psnr = scores["psnr"]
            best = os.path.join(self.folder, "best")
            save_generator(self.generator, os.path.join(best, "generator.weights.h5"))
            _atomic_write_text(os.path.join(best, "best.json"),
                               json.dumps({"iteration": iteration, **scores}, indent=2))
        return scores

    def write_grid(self):
        """LR (bicubic) | SR | HR | predicted edge 128 | Canny 128 of the first validation faces."""
        import numpy as np

        from data.canny import canny_targets
        from data.images import upscale_bicubic
        from utils import to_uint8
        from visualizer import image_grid

        count = min(GRID_IMAGES, len(self.val_lr))
        sr, _, _, edge = [o.numpy() for o in self.predict(self.tf.constant(self.val_lr[:count]))]
        canny = canny_targets(self.val_hr[:count], self.opt.canny_low, self.opt.canny_high,
                              self.opt.canny_adaptive)[-1].numpy()
        scale = self.opt.crop_size // self.opt.lr_size
        gray = lambda m: np.repeat(to_uint8(m), 3, axis=-1)  # noqa: E731
        rows = [[upscale_bicubic(self.val_lr[i].astype(np.uint8), scale), to_uint8(sr[i]), self.val_hr[i],
                 gray(edge[i]), gray(canny[i])] for i in range(count)]
        with self.writer.as_default(step=int(self.iteration.numpy())):
            self.tf.summary.image("LR | SR | HR | edge | Canny", image_grid(rows)[None], max_outputs=1)

    # -- the loop ---------------------------------------------------------------
    def _on_signal(self, signum, _frame):
        if self.stop_signal is not None:  # a second Ctrl-C: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.stop_signal = signum
        self.log(f"{signal.Signals(signum).name}: finishing the next step (with every worker), then saving")

    def batches(self, epoch, position):
        """The distributed batches of `epoch` from global batch `position` on.

        Each worker reads its share of every global batch (TrainData.dataset's
        worker/workers), split into per-replica batches: one device would train
        on the same global batches in the same order.
        """
        batch_size = self.opt.batchSize

        def worker_dataset(context):
            return self.data.dataset(epoch, position * batch_size, context.input_pipeline_id,
                                     context.num_input_pipelines).rebatch(
                context.get_per_replica_batch_size(batch_size), drop_remainder=True)

        return self.strategy.distribute_datasets_from_function(worker_dataset)

    def fit(self):
        from tqdm import tqdm

        from options.base_options import save_options

        tf, opt = self.tf, self.opt
        self.prepare_folder()
        status = self.start()
        if self.chief:
            save_options(opt, self.folder)
            self.writer = tf.summary.create_file_writer(os.path.join(self.folder, "logs"))
            self.load_validation()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        unreadable = len(self.data.unreadable)
        replicas = self.strategy.num_replicas_in_sync
        print(f"{status}; {self.data.num_images} training images"
              + (f" ({unreadable} unreadable, skipped)" if unreadable else "")
              + f", {self.steps_per_epoch} iterations/epoch, "
              f"{self.total_iters} iterations, GAN phase after iteration {self.gan_start}"
              + (f"; {replicas} replicas of {opt.batchSize // replicas} images" if replicas > 1 else "")
              + (f"; validation bicubic PSNR {self.val_bicubic['psnr']:.2f} dB on {len(self.val_hr)} faces "
                 f"of {opt.val_path or opt.test_path}"
                 if self.chief else "; not the chief: writes no files"))

        progress = tqdm(total=self.total_iters, initial=int(self.iteration.numpy()), unit="it",
                        dynamic_ncols=True)
        logs = None
        while int(self.iteration.numpy()) < self.total_iters and not self.stopping:
            epoch_done = False
            for batch in self.batches(int(self.epoch.numpy()), int(self.position.numpy())):
                step_logs = self.train_step(batch)
                self.position.assign_add(1)
                # the epoch counter moves with its last batch, so a checkpoint saved there is an epoch end
                epoch_done = int(self.position.numpy()) >= self.steps_per_epoch
                if epoch_done:
                    self.end_epoch()
                if step_logs is not None:
                    logs = step_logs
                    self.iteration.assign_add(1)
                    progress.update(1)
                    progress.set_postfix({k: f"{logs[k]:.3g}" for k in ("G_total", "L_rgb", "L_e", "L_id",
                                                                         "D_loss")})
                    self.after_iteration(logs)
                if epoch_done:
                    self.after_epoch(logs)
                if epoch_done or self.stopping or int(self.iteration.numpy()) >= self.total_iters:
                    break
            else:  # unreadable files ended the epoch early
                self.end_epoch()
                self.after_epoch(logs)
        progress.close()

        prefix = self.save()
        iteration = int(self.iteration.numpy())
        if self.stopping:
            command = " ".join(shlex.quote(a) for a in [sys.executable, PROG] + resume_args(sys.argv[1:]))
            cause = (f"by {signal.Signals(self.stop_signal).name}" if self.stop_signal is not None
                     else "by a signal to another worker")
            print(f"stopped {cause} at iteration {iteration}; saved {prefix or 'by the chief'}\n"
                  f"resume with: {command}")
            return
        skipped = ((f"; skipped {self.skipped_batches} NaN batches" if self.skipped_batches else "")
                   + (f"; skipped {len(self.data.unreadable)} unreadable images" if self.data.unreadable else "")
                   + (f"; {self.overflow_steps} updates skipped by loss scaling" if self.overflow_steps else ""))
        if not self.chief:
            print(f"done: {iteration} iterations; the chief saved the generator" + skipped)
            return
        scores = self.validate()
        self.writer.flush()
        print(f"done: {iteration} iterations; validation PSNR {scores['psnr']:.2f} dB "
              f"(bicubic {self.val_bicubic['psnr']:.2f}), SSIM {scores['ssim']:.4f} "
              f"(bicubic {self.val_bicubic['ssim']:.4f}); generator: "
              f"{os.path.join(self.folder, 'generator.weights.h5')}" + skipped)

    def after_iteration(self, logs):
        opt, iteration = self.opt, int(self.iteration.numpy())
        last = iteration >= self.total_iters
        if self.chief:
            if iteration % opt.print_iter_freq == 0 or last:
                self.write_loss_line(logs)
                self.write_scalars(logs)
            if opt.display_iter_freq and iteration % opt.display_iter_freq == 0:
                self.write_grid()
            if opt.val_iter_freq and iteration % opt.val_iter_freq == 0 and not last:
                scores = self.validate()
                self.log(f"iteration {iteration}: validation PSNR {scores['psnr']:.2f} dB "
                         f"(bicubic {self.val_bicubic['psnr']:.2f}), SSIM {scores['ssim']:.4f}")
        if opt.save_iter_freq and iteration % opt.save_iter_freq == 0 and not last:
            self.save()

    def end_epoch(self):
        self.epoch.assign_add(1)
        self.position.assign(0)

    def after_epoch(self, logs):
        opt, epoch = self.opt, int(self.epoch.numpy())
        if logs is None:
            return
        if self.chief and opt.print_epoch_freq and epoch % opt.print_epoch_freq == 0:
            self.write_loss_line(logs)
        if self.chief and opt.display_epoch_freq and epoch % opt.display_epoch_freq == 0:
            self.write_grid()
        if opt.save_epoch_freq and epoch % opt.save_epoch_freq == 0:
            self.save()

def main(argv=None):
    opt = TrainOptions().parse(argv)
    if not os.path.isdir(opt.train_path):
        fail(f"--train_path {opt.train_path} is not a folder")
    from models import CheckpointError
    from models.identity import IdentityWeightsError

    try:
        strategy = make_strategy(opt.strategy)
        trainer = Trainer(opt, strategy)
    except (TrainingError, CheckpointError, IdentityWeightsError, ValueError) as err:
        fail(str(err).splitlines()[0] + ("; or train without the identity loss: --lambda_id 0"
                                         if isinstance(err, IdentityWeightsError) else ""))
    if opt.mixed_precision and not trainer.tf.config.list_logical_devices("GPU"):
        trainer.log("--mixed_precision on the CPU: its float16 convolution gradients are far slower than float32")
    try:
        trainer.fit()
    except (TrainingError, CheckpointError) as err:
        fail(str(err))
    return trainer

if __name__ == "__main__":
    main()
