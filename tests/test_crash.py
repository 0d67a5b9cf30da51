"""Crashes and interruptions of train.py: SIGKILL at random moments and inside a save, Ctrl-C twice, unusable
folders."""
import glob
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_train import ROOT, TINY, options, weights

from training.errors import TrainingError
from training.trainer import Trainer

NITER = 12
SAVE_EVERY = 3  # not a multiple of the 2 iterations of an epoch: resumes start mid-epoch


def start(folder, resume, pause=None):
    """train.py in the background; with `pause` (a folder) each save halts halfway (tests/save_pause.py)."""
    program = ["tests/save_pause.py", str(pause)] if pause else ["train.py"]
    args = [sys.executable, *program, *TINY, "--checkpoint_path", str(folder), "--niter", str(NITER),
            "--save_iter_freq", str(SAVE_EVERY), "--val_iter_freq", "0", "--save_epoch_freq", "0",
            "--max_to_keep", "2"]
    return subprocess.Popen(args + (["--continue_train"] if resume else []), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def saved_iterations(folder):
    return sorted(int(m.group(1)) for p in glob.glob(os.path.join(folder, "experiment", "ckpt", "ckpt-*.index"))
                  if (m := re.search(r"ckpt-(\d+)\.index$", p)))


def logged_iteration(log):
    found = re.findall(r"iters: (\d+)\)", log.read_text()) if log.exists() else []
    return int(found[-1]) if found else 0


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_one_save_interval(tmp_path):
    folder, pause = tmp_path / "killed", tmp_path / "pause"
    pause.mkdir()
    straight = start(tmp_path / "straight", False)  # the same run, never interrupted
    rng = random.Random(0)
    kills = during_save = 0
    resume = False
    # kills 0 and 2 land just after an iteration the test picks (in training, a log line or a save): past the
    # first checkpoint, and the second one after ckpt-9, so kill 3 halts the final save (ckpt-12 recorded,
    # the generator not exported) and the last run only has that export left to do
    targets = {0: rng.randint(SAVE_EVERY + 1, 2 * SAVE_EVERY - 1), 2: NITER - 2}
    log = folder / "experiment" / "loss_log.txt"
    while kills < 4:
        # every other kill lands inside a save: the checkpoint written and recorded, the generator not exported
        halted = kills % 2 == 1
        proc = start(folder, resume, pause if halted else None)
        deadline = time.time() + 300
        if halted:
            while proc.poll() is None and not os.listdir(pause) and time.time() < deadline:
                time.sleep(0.02)
        else:
            while proc.poll() is None and logged_iteration(log) < targets[kills] and time.time() < deadline:
                time.sleep(0.02)
        if proc.poll() is not None:  # finished before it could be killed
            break
        proc.kill()
        proc.wait()
        kills += 1
        if halted:
            (marker,) = os.listdir(pause)
            os.remove(pause / marker)
            during_save += 1
        resume = bool(saved_iterations(folder))
        if resume:  # a resume starts from the newest recorded checkpoint: at most one save interval lost
            trainer = Trainer(options(folder, "--niter", str(NITER), "--continue_train"))
            trainer.state.start()
            iteration = int(trainer.state.iteration.numpy())
            if halted:  # killed right after recording ckpt-N: nothing lost
                assert f"saving-{iteration}" == marker
            # a kill after ckpt-N is written but before the `checkpoint` file lists it leaves ckpt-N unrecorded
            assert iteration >= max(saved_iterations(folder)) - SAVE_EVERY
            assert trainer.state.manager.latest_checkpoint.endswith(f"ckpt-{iteration}")
    assert kills == 4 and during_save == 2, f"only {kills} kills ({during_save} during a save)"
    proc = start(folder, resume)
    assert proc.wait(timeout=600) == 0 and straight.wait(timeout=600) == 0
    assert max(saved_iterations(folder)) == NITER
    with open(folder / "experiment" / "loss_log.txt", encoding="utf-8") as f:
        logged = f.read()
    assert [int(m.group(1)) for m in re.finditer(r"iters: (\d+)\)", logged)] == list(range(1, NITER + 1)), \
        "a resumed run must not log an iteration twice or skip one"
    # and it ends where the uninterrupted run ends, to the bit: every loss line and every generator weight
    with open(tmp_path / "straight" / "experiment" / "loss_log.txt", encoding="utf-8") as f:
        assert logged == f.read()
    ours, reference = (weights(p / "experiment" / "generator.weights.h5") for p in (folder, tmp_path / "straight"))
    assert ours.keys() == reference.keys() and len(ours) == 28
    for key in ours:
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
    print(f"survived {kills} SIGKILLs ({during_save} during a save)")


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tmp_path):
    pause = tmp_path / "pause"
    pause.mkdir()
    proc = subprocess.Popen([sys.executable, "tests/save_pause.py", str(pause), *TINY, "--checkpoint_path",
                             str(tmp_path), "--niter", "500", "--save_iter_freq", "0", "--save_epoch_freq", "0",
                             "--val_iter_freq", "0"],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log = tmp_path / "experiment" / "loss_log.txt"
        deadline = time.time() + 300
        while proc.poll() is None and not (log.exists() and log.read_text()) and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)  # the first: finish the step, then save (which halts, held by the test)
        while proc.poll() is None and not os.listdir(pause) and time.time() < deadline:
            time.sleep(0.02)
        assert os.listdir(pause), "the first Ctrl-C never reached the final save"
        proc.send_signal(signal.SIGINT)  # the second: stop now, whatever the run is doing
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGINT, out[-2000:]
    assert "SIGINT: finishing the next step" in out and "resume with" not in out
    assert not (tmp_path / "experiment" / "generator.weights.h5").exists()  # stopped before the export
def test_unwritable_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    trainer = Trainer(options(blocker / "runs", "--niter", "1"))
    with pytest.raises(TrainingError, match="cannot write to"):
        trainer.fit()


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    trainer = Trainer(options(tmp_path, "--niter", "1"))
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(TrainingError, match="GiB free.*a checkpoint takes"):
        trainer.fit()
    assert not os.path.exists(tmp_path / "experiment" / "ckpt")
