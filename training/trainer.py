"""One training run: the strategy, the schedule, signals and the loop, over training/'s three parts.

A run has three parts: the GAN step (networks, optimizers, one update; gan_step.py), the run
state (position, checkpoints, folder; run_state.py) and the run log (loss log, TensorBoard,
validation; run_log.py). `Trainer` drives them through the schedule; `run` is train.py's work
once TensorFlow has started.

Distributed (--strategy): --batchSize is the global batch (gan_step.py). The data position
(epoch, global batches done) means the same under any number of replicas, so a run resumes
under another one. Only the chief writes files; the loop's decisions (skip, stop) come from
values reduced over all replicas, so every worker takes the same ones.
"""
import os
import shlex
import signal
import sys

import keras
import tensorflow as tf
from tqdm import tqdm

from data.pipeline import DataConfig, TrainData
from models import CheckpointError
from models.identity import IdentityWeightsError
from options.base_options import save_options
from options.train_options import PAPER_GAN_START
from training.config import LogConfig, StateConfig, StepConfig
from training.errors import NonFiniteLoss, TrainingError
from training.gan_step import GanStep
from training.run_folder import claim_run_folder
from training.run_log import RunLog
from training.run_state import RunState, resume_args
from utils import fail, silence_onednn_uint8_notice

PROG = "train.py"  # the program a stopped run is resumed with


def make_strategy(name):
    """The tf.distribute strategy of --strategy (before any other TF op: multi-worker needs that)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainingError("--strategy multi_worker needs TF_CONFIG: the cluster's workers and this "
                                "one's task (docs/distributed.md)")
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except ValueError as err:
            raise TrainingError(f"bad TF_CONFIG: {str(err).splitlines()[0]}") from err
    return tf.distribute.get_strategy()


def input_pipelines(strategy):
    """How many workers read input: one per machine of the cluster, else one."""
    resolver = strategy.cluster_resolver
    if resolver is None:
        return 1
    spec = resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)


class Trainer:
    """One training run: its GAN step, run state and run log, driven through the schedule by `fit`."""

    def __init__(self, opt, strategy=None, argv=None):
        """`opt`: TrainOptions().parse(); `argv`: its command line, for the resume command (sys.argv's if None)."""
        self.opt = opt
        self.argv = sys.argv[1:] if argv is None else list(argv)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = self.strategy.extended.should_checkpoint
        # before anything slow
        claim_run_folder(opt, self.chief)
        replicas = self.strategy.num_replicas_in_sync
        if opt.batchSize % replicas:
            raise TrainingError(f"--batchSize {opt.batchSize} does not split evenly over {replicas} replicas: "
                                f"give a multiple of {replicas}")
        keras.utils.set_random_seed(opt.seed)

        data_config = DataConfig.from_options(opt)
        self.data = TrainData(data_config, input_pipelines(self.strategy))
        self.data.warm_cache()
        self.steps_per_epoch = self.data.steps_per_epoch
        if self.steps_per_epoch < 1:
            raise TrainingError(f"no full batch of {opt.batchSize} readable images under {opt.train_path}")
        self.total_iters = opt.niter or opt.epoch * self.steps_per_epoch
        self.gan_start = (opt.gan_start_iter if opt.gan_start_iter >= 0
                          else int(round(PAPER_GAN_START * self.total_iters)))
        self.step = GanStep(StepConfig.from_options(opt), self.strategy)
        self.state = RunState(StateConfig.from_options(opt), self.step, self.strategy)
        self.log = RunLog(LogConfig.from_options(opt), data_config, self.step.generator)
        self.stop_signal = None

    def _iteration(self):
        return int(self.state.iteration.numpy())

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

    def train_step(self, batch):
        """The next generator update (GAN phase from iteration gan_start); its losses, or None if skipped."""
        iteration = self._iteration()
        try:
            return self.step.train_step(batch, iteration >= self.gan_start, iteration, self.stop_signal is not None)
        except NonFiniteLoss as err:
            raise self.state.stopped_unsaved(err) from None

    def save(self):
        prefix = self.state.save()
        if self.chief:
            self.log.write_loss_curves()
        return prefix

    # -- the loop ---------------------------------------------------------------
    def _on_signal(self, signum, _frame):
        if self.stop_signal is not None:  # a second Ctrl-C: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.stop_signal = signum
        tqdm.write(f"{signal.Signals(signum).name}: finishing the next step (with every worker), then saving")

    def fit(self):
        self.state.check_folder()
        status = self.state.start()
        if self.chief:
            save_options(self.opt, self.opt.experiment_dir)
            self.log.open()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        print(start_line(self, status))

        progress = tqdm(total=self.total_iters, initial=self._iteration(), unit="it", dynamic_ncols=True)
        logs = None
        while self._iteration() < self.total_iters and not self.step.stop_voted:
            epoch_done = False
            for batch in self.batches(int(self.state.epoch.numpy()), int(self.state.position.numpy())):
                step_logs = self.train_step(batch)
                self.state.position.assign_add(1)
                # the epoch counter moves with its last batch, so a checkpoint saved there is an epoch end
                epoch_done = int(self.state.position.numpy()) >= self.steps_per_epoch
                if epoch_done:
                    self.state.end_epoch()
                if step_logs is not None:
                    logs = step_logs
                    self.state.iteration.assign_add(1)
                    progress.update(1)
                    progress.set_postfix({k: f"{logs[k]:.3g}" for k in ("G_total", "L_rgb", "L_e", "L_id",
                                                                         "D_loss")})
                    self.after_iteration(logs)
                if epoch_done:
                    self.after_epoch(logs)
                if epoch_done or self.step.stop_voted or self._iteration() >= self.total_iters:
                    break
            else:  # unreadable files ended the epoch early
                self.state.end_epoch()
                self.after_epoch(logs)
        progress.close()
        self.finish()

    def finish(self):
        """The last save, the last validation and the closing message."""
        prefix = self.save()
        iteration = self._iteration()
        if self.step.stop_voted:
            print(stop_lines(self, iteration, prefix))
            return
        scores = None
        if self.chief:
            scores = self.log.validate(iteration)
            self.log.flush()
        print(done_line(self, iteration, scores))

    def after_iteration(self, logs):
        opt, iteration = self.opt, self._iteration()
        last = iteration >= self.total_iters
        if self.chief:
            if iteration % opt.print_iter_freq == 0 or last:
                self.log.write_loss_line(logs, iteration, self.state.epoch_number())
                self.log.write_scalars(logs, iteration)
            if opt.display_iter_freq and iteration % opt.display_iter_freq == 0:
                self.log.write_grid(iteration)
            if opt.val_iter_freq and iteration % opt.val_iter_freq == 0 and not last:
                scores = self.log.validate(iteration)
                tqdm.write(f"iteration {iteration}: {self.log.validation_text(scores)}")
        if opt.save_iter_freq and iteration % opt.save_iter_freq == 0 and not last:
            self.save()

    def after_epoch(self, logs):
        opt, epoch = self.opt, int(self.state.epoch.numpy())
        if logs is None:
            return
        if self.chief and opt.print_epoch_freq and epoch % opt.print_epoch_freq == 0:
            self.log.write_loss_line(logs, self._iteration(), self.state.epoch_number())
        if self.chief and opt.display_epoch_freq and epoch % opt.display_epoch_freq == 0:
            self.log.write_grid(self._iteration())
        if opt.save_epoch_freq and epoch % opt.save_epoch_freq == 0:
            self.save()


# -- what a run prints ----------------------------------------------------------
def start_line(trainer, status):
    """The line a run starts with: how it started, its data, its schedule, its validation set."""
    opt, data, unreadable = trainer.opt, trainer.data, len(trainer.data.unreadable)
    replicas = trainer.strategy.num_replicas_in_sync
    return (f"{status}; {data.num_images} training images"
            + (f" ({unreadable} unreadable, skipped)" if unreadable else "")
            + f", {trainer.steps_per_epoch} iterations/epoch, "
            f"{trainer.total_iters} iterations, GAN phase after iteration {trainer.gan_start}"
            + (f"; {replicas} replicas of {opt.batchSize // replicas} images" if replicas > 1 else "")
            + (f"; validation bicubic PSNR {trainer.log.val_bicubic['psnr']:.2f} dB on {len(trainer.log.val_hr)} "
               f"faces of {opt.val_path or opt.test_path}"
               if trainer.chief else "; not the chief: writes no files"))


def stop_lines(trainer, iteration, prefix):
    """What a run stopped by a signal saved, and the command that resumes it."""
    command = " ".join(shlex.quote(a) for a in [sys.executable, PROG] + resume_args(trainer.argv))
    cause = (f"by {signal.Signals(trainer.stop_signal).name}" if trainer.stop_signal is not None
             else "by a signal to another worker")
    return f"stopped {cause} at iteration {iteration}; saved {prefix or 'by the chief'}\nresume with: {command}"


def done_line(trainer, iteration, scores):
    """The last line of a finished run: its final validation `scores` (the chief's; None elsewhere), its skips."""
    step, data = trainer.step, trainer.data
    skipped = ((f"; skipped {step.skipped_batches} NaN batches" if step.skipped_batches else "")
               + (f"; skipped {len(data.unreadable)} unreadable images" if data.unreadable else "")
               + (f"; {step.overflow_steps} updates skipped by loss scaling" if step.overflow_steps else ""))
    if scores is None:
        return f"done: {iteration} iterations; the chief saved the generator" + skipped
    return (f"done: {iteration} iterations; {trainer.log.validation_text(scores)}; "
            f"generator: {os.path.join(trainer.opt.experiment_dir, 'generator.weights.h5')}" + skipped)


def run(opt, argv=None):
    """Train as `opt` (parsed from `argv`) says; a user's error ends the program with one line. Returns the Trainer."""
    try:
        strategy = make_strategy(opt.strategy)
        silence_onednn_uint8_notice(tf)  # the first op: after the strategy has configured the runtime
        trainer = Trainer(opt, strategy, argv)
    except (TrainingError, CheckpointError, IdentityWeightsError, ValueError) as err:
        fail(PROG, str(err).splitlines()[0] + ("; or train without the identity loss: --lambda_id 0"
                                               if isinstance(err, IdentityWeightsError) else ""))
    if opt.mixed_precision and not tf.config.list_logical_devices("GPU"):
        tqdm.write("--mixed_precision on the CPU: its float16 convolution gradients are far slower than float32")
    try:
        trainer.fit()
    except (TrainingError, CheckpointError) as err:
        fail(PROG, str(err))
    return trainer

