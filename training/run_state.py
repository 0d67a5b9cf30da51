"""The run state: where a run is (iteration, epoch, data position), its checkpoints and its folder.

A checkpoint holds the networks, both optimizers, the position and, under
--mixed_precision, the loss scales; restoring one resumes the run exactly,
under any number of replicas. Only the chief keeps checkpoints and writes files.
"""
import math
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from models import load_generator, save_generator
from training.errors import TrainingError
from utils import atomic_path, atomic_write_text


def truncate_logs(folder, iteration):
    """Drop log lines written after `iteration` (by a run that died before its next save)."""
    for name, key in (("loss_log.txt", lambda line: re.match(r"\(epoch: \d+, iters: (\d+)\)", line)),
                      ("validation.csv", lambda line: re.match(r"(\d+),", line))):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        kept = [line for line in lines if not (key(line) and int(key(line).group(1)) > iteration)]
        if len(kept) != len(lines):
            atomic_write_text(path, "".join(kept))


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


class RunState:
    """The position of a run and its checkpoints: start (restore or initialise) and save."""

    def __init__(self, config, step, strategy):
        """`config`: a training.config.StateConfig."""
        self.config = config
        self.step = step
        self.folder = config.folder
        self.chief = strategy.extended.should_checkpoint
        with strategy.scope():
            self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name="position")
        # the checkpoint's object names: old checkpoints are read by them
        self.objects = dict(generator=step.generator, discriminator=step.discriminator,
                            g_optimizer=step.g_optimizer, d_optimizer=step.d_optimizer, iteration=self.iteration,
                            epoch=self.epoch, position=self.position)
        if step.loss_scale:
            self.objects["loss_scale"] = tf.train.Checkpoint(**{
                f"{net}_{part}": getattr(scale, part) for net, scale in step.loss_scale.items()
                for part in ("value", "good_steps")})
        self.checkpoint = tf.train.Checkpoint(**self.objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.folder, "ckpt"),
                                                  max_to_keep=config.max_to_keep, checkpoint_name="ckpt")

    # -- the position ------------------------------------------------------------
    def epoch_number(self):
        """The epoch being trained, 1-based; at an epoch's end, the one just finished."""
        return int(self.epoch.numpy()) + (1 if int(self.position.numpy()) > 0 else 0)

    def end_epoch(self):
        self.epoch.assign_add(1)
        self.position.assign(0)

    def stopped_unsaved(self, cause):
        """The error of a run stopped by `cause` (a NonFiniteLoss) before saving: what it can resume from."""
        latest = self.manager.latest_checkpoint
        return TrainingError(f"{cause}; stopped without saving"
                             + (f", the last good checkpoint is {latest} (resume with --continue_train)"
                                if latest else ", no checkpoint was saved yet")
                             + "; --skip_nan skips such batches instead")

    # -- the folder ------------------------------------------------------------
    def check_folder(self):
        """Fail before training when the run folder is unusable."""
        if not self.chief:  # the others write nothing there
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
            probe = os.path.join(self.folder, ".write_test")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as err:
            raise TrainingError(f"cannot write to {self.folder}: {err.strerror or err}") from err
        variables = self.checkpoint_size()
        free = shutil.disk_usage(self.folder).free
        if free < 2 * variables:
            raise TrainingError(f"{free / 2**30:.1f} GiB free under {self.folder}; a checkpoint takes "
                                f"{variables / 2**30:.1f} GiB and saving needs twice that")

    def checkpoint_size(self):
        step = self.step
        variables = (step.generator.weights + step.discriminator.weights + step.g_optimizer.variables
                     + step.d_optimizer.variables)
        return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)

    # -- start, resume ---------------------------------------------------------
    def pick_checkpoint(self):
        """The checkpoint --continue_train resumes: latest, or the one --which_epoch/--which_iter names."""
        config = self.config
        checkpoints = self.manager.checkpoints
        if not checkpoints:
            raise TrainingError(f"nothing to resume: no checkpoint in {os.path.join(self.folder, 'ckpt')}"
                                + ("" if self.chief else " (every worker reads the chief's checkpoints: "
                                                         "--checkpoint_path must be a shared folder)"))
        if config.which_iter is None and config.which_epoch is None:
            return checkpoints[-1]
        saved = []
        for prefix in checkpoints:
            reader = tf.train.load_checkpoint(prefix)
            saved.append((prefix, int(reader.get_tensor("iteration/.ATTRIBUTES/VARIABLE_VALUE")),
                          int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")),
                          int(reader.get_tensor("position/.ATTRIBUTES/VARIABLE_VALUE"))))
        if config.which_iter is not None:
            found = [p for p, it, _, _ in saved if it == config.which_iter]
            what, have = f"iteration {config.which_iter}", ", ".join(str(it) for _, it, _, _ in saved)
        else:
            found = [p for p, _, ep, pos in saved if ep == config.which_epoch and pos == 0]
            what = f"the end of epoch {config.which_epoch}"
            have = ", ".join(f"epoch {ep}" for _, _, ep, pos in saved if pos == 0) or "none at an epoch end"
        if not found:
            raise TrainingError(f"no checkpoint saved at {what} in {self.manager.directory} (kept: {have})")
        return found[-1]

    def start(self):
        """Restore (--continue_train) or initialise (--init_weights) the run; returns a status line."""
        config = self.config
        if config.continue_train:
            return self._restore()
        if config.init_weights:
            self.step.generator.set_weights(
                load_generator(config.init_weights, config.lr_size, config.output_nc).get_weights())
            return f"generator initialised from {config.init_weights}"
        return "new run"

    def _restore(self):
        config = self.config
        prefix = self.pick_checkpoint()
        root = self.checkpoint
        if "loss_scale" in self.objects and not any(
                name.startswith("loss_scale/") for name, _ in tf.train.list_variables(prefix)):
            # a run saved without --mixed_precision: the loss scales start afresh
            root = tf.train.Checkpoint(**{k: v for k, v in self.objects.items() if k != "loss_scale"})
        try:
            root.read(prefix).assert_existing_objects_matched().expect_partial()
        except (tf.errors.OpError, AssertionError, ValueError) as err:
            raise TrainingError(f"cannot restore {prefix}: {str(err).splitlines()[0]}") from err
        if self.chief:
            truncate_logs(self.folder, int(self.iteration.numpy()))
        status = f"resumed {prefix} (iteration {int(self.iteration.numpy())})"
        saved_rate = float(self.step.g_optimizer.learning_rate.numpy())
        if not math.isclose(saved_rate, config.learning_rate, rel_tol=1e-6):  # stored as float32
            # the checkpoint holds the rate the run had; a changed --learning_rate is the user's decision
            for optimizer in (self.step.g_optimizer, self.step.d_optimizer):
                optimizer.learning_rate = config.learning_rate
            status += f"; learning rate now {config.learning_rate:g} (it was {saved_rate:g})"
        return status

    # -- save --------------------------------------------------------------------
    def save(self):
        """Checkpoint the run and export its generator (chief); returns the checkpoint prefix, None elsewhere."""
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
        with atomic_path(os.path.join(self.folder, "generator.weights.h5"), suffix=".weights.h5") as tmp:
            save_generator(self.step.generator, tmp)
        return self.manager.latest_checkpoint
