"""train.py never writes over a model it did not start: the bundled one least of all.

Runs train.py with its default --checkpoint_path / --save_path inside a git clone of this
repository, so `git status` there shows every file a run touched.
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

BUNDLE = os.path.join("checkpoint", "CelebA")
# small and fast; nothing here names the run folder: that is the default under test
SMALL = ["--load_size", "64", "--crop_size", "64", "--batchSize", "2", "--lambda_id", "0", "--val_images", "2",
         "--val_iter_freq", "0", "--gpu_ids", "-1", "--display_epoch_freq", "0", "--cache_memory_mb", "64",
         "--print_iter_freq", "1", "--save_epoch_freq", "0"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(
            os.path.join(ROOT, ".git")):
        pytest.fail("this test needs git and a git checkout (CI runs on a clone)")
    target = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", ROOT, str(target)], check=True, timeout=120)
    faces = target.parent / "faces"
    faces.mkdir()
    for name in sorted(os.listdir(os.path.join(ROOT, "datasets", "test")))[:2]:
        shutil.copy(os.path.join(ROOT, "datasets", "test", name), faces / name)
    return target, str(faces)


def train(clone, *args):
    """This worktree's train.py, run from the clone: its relative defaults resolve inside the clone."""
    repo, faces = clone
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--train_path", faces, "--test_path",
                           faces, *SMALL, *args], cwd=repo, capture_output=True, text=True, timeout=300)


def changed(repo):
    """`git status` of the clone: (bundled files changed or added, everything else), ignored files included."""
    lines = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"], cwd=repo, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    bundle = [line for line in lines if line[3:].startswith(BUNDLE.replace(os.sep, "/") + "/")]
    return bundle, [line for line in lines if line not in bundle]


def error_line(result):
    # TensorFlow's start-up lines may precede ours, which is one line and the last
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_default_run_trains_beside_the_bundle_and_never_over_a_run(clone):
    repo, _ = clone
    first = train(clone, "--niter", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    bundle, others = changed(repo)
    assert bundle == [], f"a run with the default flags changed the bundled model: {bundle}"
    run = repo / "checkpoint" / "experiment"
    assert (run / "generator.weights.h5").is_file() and sorted(os.listdir(run / "ckpt")) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert others and all(line.startswith("!! checkpoint/experiment/") for line in others), others

    # the same command again, and one aimed at the bundle: one line naming the folder and the ways out
    for args, folder in (((), os.path.join("checkpoint", "experiment")), (("--save_path", "CelebA"), BUNDLE)):
        before = (run / "loss_log.txt").read_text()
        result = train(clone, "--niter", "2", *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        line = error_line(result)
        assert line.startswith(f"train.py: error: {folder} already holds a run (generator.weights.h5"), line
        assert all(way in line for way in ("--continue_train", "--save_path", "--overwrite")), line
        assert (run / "loss_log.txt").read_text() == before
    assert changed(repo)[0] == []

    # --overwrite may not delete the weights it starts from
    result = train(clone, "--niter", "1", "--save_path", "CelebA", "--overwrite", "--init_weights", BUNDLE)
    assert result.returncode == 2 and "--overwrite would delete --init_weights" in result.stderr

    # starting from the bundle works; --overwrite replaces the earlier run's outputs, not adds to them
    result = train(clone, "--niter", "1", "--overwrite", "--init_weights", BUNDLE)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"generator initialised from {BUNDLE}" in result.stdout
    assert sorted(os.listdir(run / "ckpt")) == ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    assert [line.split(")")[0] for line in (run / "loss_log.txt").read_text().splitlines()] == ["(epoch: 1, iters: 1"]
    assert changed(repo)[0] == []
