"""train.py end to end on the bundled faces, small (64x64 HR, 8x8 LR) to stay fast."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from models import load_generator
from options.train_options import TrainOptions
from training.config import LogConfig, StateConfig, StepConfig
from training.errors import TrainingError
from training.run_log import RunLog
from training.run_state import resume_args
from training.trainer import Trainer

TINY = ["--train_path", os.path.join(ROOT, "datasets", "train"), "--test_path", os.path.join(ROOT, "datasets", "test"),
        "--load_size", "64", "--crop_size", "64", "--batchSize", "2", "--lambda_id", "0", "--val_images", "2",
        "--gpu_ids", "-1", "--print_iter_freq", "1", "--display_epoch_freq", "0", "--cache_memory_mb", "64"]


def options(folder, *extra):
    return TrainOptions().parse(TINY + ["--checkpoint_path", str(folder), *extra])


def run(folder, *extra):
    trainer = Trainer(options(folder, *extra))
    trainer.fit()
    return trainer


def weights(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def loss_lines(folder):
    with open(os.path.join(folder, "experiment", "loss_log.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def test_tiny_run_writes_every_output(tmp_path):
    trainer = run(tmp_path, "--niter", "4", "--save_iter_freq", "2", "--val_iter_freq", "2",
                  "--display_iter_freq", "2", "--gan_start_iter", "2")
    folder = tmp_path / "experiment"
    assert int(trainer.state.iteration.numpy()) == 4
    assert sorted(os.listdir(folder / "ckpt")) == sorted(
        ["checkpoint"] + [f"ckpt-{i}.{ext}" for i in (2, 4) for ext in ("index", "data-00000-of-00001")])
    lines = loss_lines(tmp_path)
    pattern = (r"\(epoch: \d+, iters: (\d+)\) G_total: \S+ MSE: \S+ EDGE: \S+ YUV: \S+ G_GAN: (\S+) "
               r"D_GAN: (\S+) ID: \S+$")
    parsed = [re.match(pattern, line) for line in lines]
    assert all(parsed) and [int(m.group(1)) for m in parsed] == [1, 2, 3, 4]
    assert float(parsed[1].group(3)) == 0.0 and float(parsed[2].group(3)) > 0  # D trains in the GAN phase only
    generator = load_generator(str(folder), lr_size=8)
    lr = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(generator(lr)[0].numpy(), trainer.step.generator(lr)[0].numpy(), atol=1e-3)
    assert json.load(open(folder / "opt.json"))["niter"] == 4
    assert (folder / "opt.txt").exists() and (folder / "loss_curves.png").stat().st_size > 0
    assert (folder / "best" / "generator.weights.h5").exists()
    with open(folder / "validation.csv") as f:
        rows = f.read().splitlines()
    assert rows[0].startswith("iteration,psnr,ssim") and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert (folder / "validation.png").stat().st_size > 0
    tags = set()
    for event_file in (folder / "logs").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(v.tag for v in event.summary.value)
    assert {"loss/L_rgb", "loss/L_e", "loss/L_lc", "loss/G_total", "loss/D_loss", "D_accuracy", "learning_rate",
            "val/psnr", "val/ssim"} <= tags
    assert any("SR" in t for t in tags)  # the image grid


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    straight = run(tmp_path / "a", "--niter", "5", "--save_iter_freq", "0", "--save_epoch_freq", "0",
                   "--val_iter_freq", "0", "--gan_start_iter", "2")
    run(tmp_path / "b", "--niter", "3", "--save_iter_freq", "0", "--save_epoch_freq", "0",
        "--val_iter_freq", "0", "--gan_start_iter", "2")
    resumed = run(tmp_path / "b", "--niter", "5", "--save_iter_freq", "0", "--save_epoch_freq", "0",
                  "--val_iter_freq", "0", "--gan_start_iter", "2", "--continue_train")
    a = weights(tmp_path / "a" / "experiment" / "generator.weights.h5")
    b = weights(tmp_path / "b" / "experiment" / "generator.weights.h5")
    assert a.keys() == b.keys() and len(a) == 28
    # exactly: the resumed run restores every variable and the data position, so it computes the same floats
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    a_step, b_step = straight.step, resumed.step
    for x, y in zip(a_step.discriminator.weights + a_step.g_optimizer.variables + a_step.d_optimizer.variables,
                    b_step.discriminator.weights + b_step.g_optimizer.variables + b_step.d_optimizer.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)
    assert int(a_step.g_optimizer.iterations.numpy()) == int(b_step.g_optimizer.iterations.numpy()) == 5
    # every line, the resumed iterations 4-5 (one in the GAN phase) too, to the log's 4 decimals
    assert loss_lines(tmp_path / "a") == loss_lines(tmp_path / "b") and len(loss_lines(tmp_path / "b")) == 5


def test_resuming_with_another_learning_rate_trains_at_the_new_one(tmp_path, capsys):
    run(tmp_path, "--niter", "2", "--val_iter_freq", "0")  # at the default 1e-4, which the checkpoint stores
    same = Trainer(options(tmp_path, "--niter", "3", "--continue_train"))
    assert "learning rate" not in same.state.start()
    assert float(same.step.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4, rel=1e-6)
    capsys.readouterr()
    resumed = run(tmp_path, "--niter", "3", "--val_iter_freq", "0", "--continue_train", "--learning_rate", "3e-5")
    assert "(iteration 2); learning rate now 3e-05 (it was 0.0001)" in capsys.readouterr().out
    for optimizer in (resumed.step.g_optimizer, resumed.step.d_optimizer):
        assert float(optimizer.learning_rate.numpy()) == pytest.approx(3e-5, rel=1e-6)
    saved = dict(tf.train.list_variables(resumed.state.manager.latest_checkpoint))
    rates = [tf.train.load_variable(resumed.state.manager.latest_checkpoint, name) for name in saved
             if "learning_rate" in name and "OPTIMIZER_SLOT" not in name]
    assert len(rates) == 2 and all(rate == pytest.approx(3e-5, rel=1e-6) for rate in rates)


def test_another_seed_gives_another_run(tmp_path):
    run(tmp_path / "a", "--niter", "1", "--val_iter_freq", "0")
    run(tmp_path / "b", "--niter", "1", "--val_iter_freq", "0", "--seed", "1")
    assert loss_lines(tmp_path / "a") != loss_lines(tmp_path / "b")


def test_which_iter_picks_a_checkpoint_and_names_missing_ones(tmp_path):
    run(tmp_path, "--niter", "3", "--save_iter_freq", "1", "--val_iter_freq", "0", "--save_epoch_freq", "0")
    trainer = Trainer(options(tmp_path, "--niter", "3", "--continue_train", "--which_iter", "2"))
    assert trainer.state.start().startswith("resumed") and int(trainer.state.iteration.numpy()) == 2
    trainer = Trainer(options(tmp_path, "--niter", "3", "--continue_train", "--which_iter", "9"))
    with pytest.raises(TrainingError, match="iteration 9.*kept: 1, 2, 3"):
        trainer.state.start()
    trainer = Trainer(options(tmp_path, "--niter", "3", "--continue_train", "--which_epoch", "1"))
    trainer.state.start()
    assert int(trainer.state.epoch.numpy()) == 1 and int(trainer.state.position.numpy()) == 0


def test_nan_loss_stops_or_is_skipped(tmp_path):
    def poison(trainer):
        compute = trainer.step.g_compute
        calls = []

        def g_compute(batch, adversarial):
            logs, grads = compute(batch, adversarial)
            calls.append(1)
            if len(calls) == 2:
                logs = dict(logs, L_e=tf.constant(float("nan")))
                grads = [g * float("nan") for g in grads]
            return logs, grads
        trainer.step.g_compute = g_compute

    trainer = Trainer(options(tmp_path / "stop", "--niter", "3", "--val_iter_freq", "0"))
    poison(trainer)
    with pytest.raises(TrainingError, match=r"iteration 2: L_e = nan.*no checkpoint"):
        trainer.fit()

    trainer = Trainer(options(tmp_path / "skip", "--niter", "3", "--val_iter_freq", "0", "--skip_nan"))
    poison(trainer)
    trainer.fit()
    assert trainer.step.skipped_batches == 1 and int(trainer.state.iteration.numpy()) == 3
    assert all(np.isfinite(w.numpy()).all() for w in trainer.step.generator.weights)


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "train.py", *TINY, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kwargs)


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("--checkpoint_path", str(tmp_path), "--train_path", str(empty))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # TensorFlow's own start-up lines may precede it; ours is one line, the last
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: no images")
    result = cli("--checkpoint_path", str(tmp_path), "--lambda_edge", "-1")
    assert result.returncode == 2 and "--lambda_edge must be >= 0" in result.stderr
    result = cli("--checkpoint_path", str(tmp_path), "--niter", "2", "--continue_train")
    assert result.returncode == 1 and "nothing to resume" in result.stderr


@pytest.mark.slow
def test_existing_run_is_not_overwritten_and_sigterm_saves(tmp_path):
    run(tmp_path, "--niter", "1", "--val_iter_freq", "0")
    result = cli("--checkpoint_path", str(tmp_path), "--niter", "2")
    assert result.returncode == 1 and "--continue_train" in result.stderr and "Traceback" not in result.stderr

    folder = tmp_path / "sig"
    # started from weights, as a fine-tune is: the printed resume command must not repeat --init_weights
    proc = subprocess.Popen([sys.executable, "train.py", *TINY, "--checkpoint_path", str(folder), "--niter", "500",
                             "--val_iter_freq", "0", "--save_epoch_freq", "0", "--save_iter_freq", "0",
                             "--init_weights", str(tmp_path / "experiment")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = folder / "experiment" / "loss_log.txt"
    deadline = time.time() + 240
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 2):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    # TensorFlow's C++ lines (oneDNN's uint8 notice at the first flip) are filtered at start-up
    # (anywhere: such a line may follow the progress bar's carriage return)
    assert not re.search(r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ", err), err[-2000:]
    match = re.search(r"stopped by SIGTERM at iteration (\d+); saved (\S+)\nresume with: (.*--continue_train)", out)
    assert match, out[-2000:]
    assert os.path.exists(match.group(2) + ".index")
    iteration = int(match.group(1))
    assert 2 <= iteration < 500
    python, script, *args = shlex.split(match.group(3))
    assert (python, script) == (sys.executable, "train.py") and "--init_weights" not in args
    resumed = Trainer(TrainOptions().parse(args))
    assert resumed.state.start().startswith(f"resumed {match.group(2)} (iteration {iteration})")
    assert int(resumed.state.iteration.numpy()) == iteration


def test_a_validation_under_bicubic_says_it_is_normal_early():
    log = RunLog.__new__(RunLog)
    log.val_bicubic = {"psnr": 21.14, "ssim": 0.5873}
    early = log.validation_text({"psnr": 6.0, "ssim": 0.0635})
    assert early == ("validation PSNR 6.00 dB (bicubic 21.14), SSIM 0.0635 (bicubic 0.5873) - under bicubic, as a "
                     "new run is for its first few hundred iterations: normal so early (docs/training.md, "
                     "'Validation early in a run')")
    with open(os.path.join(ROOT, "docs", "training.md"), encoding="utf-8") as f:
        assert "**Validation early in a run**" in f.read()
    assert log.validation_text({"psnr": 23.0, "ssim": 0.67}) == (
        "validation PSNR 23.00 dB (bicubic 21.14), SSIM 0.6700 (bicubic 0.5873)")


def test_each_part_of_a_run_takes_its_values_from_the_options(tmp_path):
    opt = options(tmp_path, "--d_betas", "code", "--ad_r", "0.25", "--lambda_id", "3", "--D_steps_per_G", "2",
                  "--val_images", "0", "--which_iter", "4", "--max_to_keep", "7", "--skip_nan", "--continue_train")
    step = StepConfig.from_options(opt)
    assert (step.batch_size, step.lr_size, step.crop_size, step.d_steps_per_g) == (2, 8, 64, 2)
    assert step.d_betas == (0.9, 0.999) and step.skip_nan and not step.mixed_precision
    assert (step.pre_gan_weights.beta, step.gan_weights.beta) == (0.0, 0.25)
    assert step.pre_gan_weights.lambda_id == step.gan_weights.lambda_id == 3
    assert StepConfig.from_options(options(tmp_path)).d_betas == (0.5, 0.9)  # the paper's
    state = StateConfig.from_options(opt)
    assert state.folder == os.path.join(str(tmp_path), "experiment") and state.which_iter == 4
    assert state.max_to_keep == 7 and state.which_epoch is None and state.continue_train
    log = LogConfig.from_options(opt)
    assert log.val_path == os.path.join(ROOT, "datasets", "test") and log.val_images is None  # 0: every face
    other = LogConfig.from_options(options(tmp_path, "--val_path", str(tmp_path)))
    assert other.val_path == str(tmp_path) and other.val_images == 2


def test_resume_args_drop_init_weights_in_every_spelling():
    assert resume_args(["--niter", "9", "--init_weights", "w.h5", "--seed", "1"]) == [
        "--niter", "9", "--seed", "1", "--continue_train"]
    assert resume_args(["--init_weights=w.h5", "--continue_train", "--niter", "9"]) == [
        "--niter", "9", "--continue_train"]
    # argparse's unambiguous prefixes; --id_weights shares only "--i" and stays
    assert resume_args(["--init", "w.h5", "--id_weights", "f.h5", "--contin"]) == [
        "--id_weights", "f.h5", "--continue_train"]


@pytest.mark.slow
def test_val_path_validates_on_other_people(tmp_path):
    """--val_path replaces --test_path as the validation folder; an absent folder is a one-line error."""
    from data.images import prepare_hr, read_image

    strangers = tmp_path / "strangers"
    strangers.mkdir()
    train_dir = os.path.join(ROOT, "datasets", "train")
    picked = sorted(os.listdir(train_dir))[:2]
    for name in picked:
        shutil.copy(os.path.join(train_dir, name), strangers / name)
    trainer = Trainer(options(tmp_path, "--val_path", str(strangers)))
    trainer.log.load_validation()
    assert trainer.log.val_names == picked
    for face, name in zip(trainer.log.val_hr, picked):
        np.testing.assert_array_equal(face, prepare_hr(read_image(str(strangers / name)), 64, 64, "folder"))
    default = Trainer(options(tmp_path / "default"))
    default.log.load_validation()
    assert default.log.val_names == sorted(os.listdir(os.path.join(ROOT, "datasets", "test")))[:2]
    result = cli("--checkpoint_path", str(tmp_path), "--val_path", str(tmp_path / "absent"))
    assert result.returncode == 2 and "--val_path" in result.stderr and "is not a folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainingError, match="^validation: no images"):  # train.main prints it as one line
        Trainer(options(tmp_path / "empty_val", "--val_path", str(empty))).log.load_validation()


def test_trains_from_shards_on_another_filesystem(tmp_path):
    """--train_path as a glob of shards on ram:// (in memory, no network): the run trains and saves as from a folder."""
    from data.storage import write_shards

    ram, faces = "ram://test_train", os.path.join(ROOT, "datasets", "train")
    for name in os.listdir(faces):
        tf.io.gfile.copy(os.path.join(faces, name), f"{ram}/faces/{name}")
    shards, _ = write_shards(f"{ram}/faces", f"{ram}/shards/faces", shard_mb=0.01, progress=False)
    assert len(shards) > 1
    trainer = run(tmp_path, "--train_path", f"{ram}/shards/faces-*.tfrecord", "--cache_memory_mb", "0",
                  "--niter", "2", "--val_iter_freq", "0")
    assert trainer.data.shards == shards and not trainer.data.cached
    folder = tmp_path / "experiment"
    assert (folder / "generator.weights.h5").is_file()
    logged = re.findall(r"iters: (\d+)", (folder / "loss_log.txt").read_text())
    assert [int(i) for i in logged] == [1, 2]
