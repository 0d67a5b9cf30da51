"""Crashes and interruptions of train.py: SIGKILL at random moments, unusable output folders."""
import glob
import os
import random
import re
import subprocess
import sys
import time

import pytest

import train
from models import load_generator
from test_train import ROOT, TINY, options

NITER = 12
SAVE_EVERY = 2


def start(folder, resume):
    args = [sys.executable, "train.py", *TINY, "--checkpoint_path", str(folder), "--niter", str(NITER),
            "--save_iter_freq", str(SAVE_EVERY), "--val_iter_freq", "0", "--save_epoch_freq", "0",
            "--max_to_keep", "2"]
    return subprocess.Popen(args + (["--continue_train"] if resume else []), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def saving(folder):
    """True while a checkpoint or the generator export is being written."""
    run = os.path.join(folder, "experiment")
    return bool(glob.glob(os.path.join(run, "ckpt", "*temp*")) or glob.glob(os.path.join(run, "*.tmp*")))


def saved_iterations(folder):
    return sorted(int(m.group(1)) for p in glob.glob(os.path.join(folder, "experiment", "ckpt", "ckpt-*.index"))
                  if (m := re.search(r"ckpt-(\d+)\.index$", p)))


def test_sigkill_at_random_moments_loses_at_most_one_save_interval(tmp_path):
    rng = random.Random(0)
    kills = during_save = 0
    resume = False
    while kills < 4:
        before = saved_iterations(tmp_path)
        proc = start(tmp_path, resume)
        # past start-up and tracing once a new checkpoint exists; then kill at a random moment,
        # or (every other kill) the instant a save begins
        deadline = time.time() + 300
        while proc.poll() is None and saved_iterations(tmp_path) == before and time.time() < deadline:
            time.sleep(0.05)
        if kills % 2:
            while proc.poll() is None and not saving(tmp_path) and time.time() < deadline:
                time.sleep(0.005)
            during_save += saving(tmp_path)
        else:
            time.sleep(rng.uniform(0.0, 3.0))
        if proc.poll() is not None:  # finished before it could be killed
            break
        proc.kill()
        proc.wait()
        kills += 1
        resume = bool(saved_iterations(tmp_path))
        if resume:  # a resume starts from the newest recorded checkpoint: at most one save interval lost
            trainer = train.Trainer(options(tmp_path, "--niter", str(NITER), "--continue_train"))
            trainer.start()
            # a kill after ckpt-N is written but before the `checkpoint` file lists it leaves ckpt-N unrecorded
            assert int(trainer.iteration.numpy()) >= max(saved_iterations(tmp_path)) - SAVE_EVERY
            assert trainer.manager.latest_checkpoint.endswith(f"ckpt-{int(trainer.iteration.numpy())}")
    assert kills >= 3 and during_save >= 1, f"only {kills} kills ({during_save} during a save)"
    proc = start(tmp_path, resume)
    assert proc.wait(timeout=600) == 0
    assert max(saved_iterations(tmp_path)) == NITER
    with open(tmp_path / "experiment" / "loss_log.txt", encoding="utf-8") as f:
        logged = [int(m.group(1)) for m in re.finditer(r"iters: (\d+)\)", f.read())]
    assert logged == list(range(1, NITER + 1)), "a resumed run must not log an iteration twice or skip one"
    generator = load_generator(str(tmp_path / "experiment"), lr_size=8)
    assert generator.count_params() == 11_912_582
    print(f"survived {kills} SIGKILLs ({during_save} during a save)")


def test_unwritable_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    trainer = train.Trainer(options(blocker / "runs", "--niter", "1"))
    with pytest.raises(train.TrainingError, match="cannot write to"):
        trainer.fit()


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    trainer = train.Trainer(options(tmp_path, "--niter", "1"))
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(train.TrainingError, match="GiB free.*a checkpoint takes"):
        trainer.fit()
    assert not os.path.exists(tmp_path / "experiment" / "ckpt")
