"""train.py under tf.distribute: 2 replicas update like 1, checkpoints cross replica counts, multi-worker.

Two logical CPU devices must be configured before TensorFlow initialises its
devices, so the replica tests run in a fresh interpreter (this file as a
script); the multi-worker test starts two train.py workers on 127.0.0.1.
"""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

if __name__ == "__main__":
    # a worker or the replicas child, not a pytest process: importing conftest here would make its temporary
    # folder in the worker's TMPDIR, which must hold nothing but the worker's own saves (and remove them)
    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
else:
    from conftest import ROOT

DATA = ["--train_path", os.path.join(ROOT, "datasets", "train"), "--test_path", os.path.join(ROOT, "datasets", "test"),
        "--gpu_ids", "-1", "--val_images", "2", "--display_epoch_freq", "0", "--display_iter_freq", "0",
        "--cache_memory_mb", "64", "--load_size", "16", "--crop_size", "16", "--print_iter_freq", "1"]
CHILD_TIMEOUT = 400


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return dict(env, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", **extra)


def run_child(*args):
    result = subprocess.run([sys.executable, os.path.abspath(__file__), *map(str, args)], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_two_mirrored_replicas_update_like_one_device_and_checkpoints_cross_over(tmp_path):
    out = run_child("replicas", tmp_path)
    assert "--batchSize 3 does not split evenly over 2 replicas: give a multiple of 2" in out, out[-3000:]
    assert "replicas ok" in out, out[-3000:]


def test_distributed_worker_shares_make_up_the_global_batches():
    from data.pipeline import DataConfig, TrainData
    from options.train_options import TrainOptions

    opt = TrainOptions().parse(DATA + ["--batchSize", "4"])
    data = TrainData(DataConfig.from_options(opt))
    whole = list(data.dataset(1, offset=0).as_numpy_iterator())
    shares = [list(data.dataset(1, offset=0, worker=w, workers=2).as_numpy_iterator()) for w in range(2)]
    assert len(whole) == len(shares[0]) == len(shares[1]) == 1
    for key in whole[0]:
        np.testing.assert_array_equal(whole[0][key], np.concatenate([shares[0][0][key], shares[1][0][key]]))
    with pytest.raises(ValueError, match="equal share"):
        data.dataset(0, worker=0, workers=3)


def _free_ports(count):
    """Ports the OS has free now, distinct (all held open until all are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run_workers(tmp_path, phase, *extra):
    """Two train.py workers on 127.0.0.1 sharing one --checkpoint_path; (outputs, weights) once both ended."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs, logs = [], [tmp_path / f"{phase}_worker{index}.log" for index in range(2)]
    try:
        for index in range(2):
            temp = tmp_path / f"{phase}_temp{index}"
            temp.mkdir()
            config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            args = DATA + ["--strategy", "multi_worker", "--batchSize", "2", "--lambda_id", "0",
                           "--gan_start_iter", "1", "--save_iter_freq", "0", "--save_epoch_freq", "0",
                           "--val_iter_freq", "0", "--checkpoint_path", str(tmp_path / "run"), *extra]
            with open(logs[index], "w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "worker", tmp_path / f"{phase}_weights{index}.npz",
                     *args], cwd=ROOT, env=_env(TF_CONFIG=config, TMPDIR=str(temp)), stdout=log,
                    stderr=subprocess.STDOUT))
        deadline = time.monotonic() + CHILD_TIMEOUT
        # a worker that failed leaves the other waiting for it: stop at the first failure
        while (time.monotonic() < deadline and any(p.poll() is None for p in procs)
               and not any(p.poll() for p in procs)):
            time.sleep(0.5)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outputs = [log.read_text() for log in logs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    assert not list((tmp_path / f"{phase}_temp1").iterdir())  # the other worker removed its temporary saves
    weights = [np.load(tmp_path / f"{phase}_weights{i}.npz") for i in range(2)]
    assert weights[0].files == weights[1].files and len(weights[0].files) > 0
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    return outputs, weights[0]


@pytest.mark.slow
def test_multi_worker_on_localhost_trains_in_step_only_the_chief_saves_and_resumes(tmp_path):
    from training.run_log import parse_loss_log

    outputs, first = _run_workers(tmp_path, "first", "--niter", "3")
    assert all("done: 3 iterations" in out for out in outputs), outputs[1][-3000:]
    run = tmp_path / "run" / "experiment"
    assert sorted(p.name for p in (run / "ckpt").glob("*.index")) == ["ckpt-3.index"]  # the chief's only
    assert len((run / "loss_log.txt").read_text().splitlines()) == 3

    # one device on the same global batches ends where the two workers did
    one = tmp_path / "one"
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "worker", one / "weights.npz", *DATA,
                             "--batchSize", "2", "--lambda_id", "0", "--gan_start_iter", "1", "--save_iter_freq",
                             "0", "--save_epoch_freq", "0", "--val_iter_freq", "0", "--checkpoint_path", one,
                             "--niter", "3"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    single = np.load(one / "weights.npz")
    assert single.files == first.files

    class Array:  # what _adam_close reads
        def __init__(self, value):
            self.value = value

        def numpy(self):
            return self.value

    _adam_close([Array(first[k]) for k in first.files], [Array(single[k]) for k in single.files], 1e-4,
                "one device vs two workers")
    # the losses each logged, to a relative 1e-4 (summation order), D's from iteration 2 on (--gan_start_iter 1)
    logged = [parse_loss_log(str(folder / "experiment" / "loss_log.txt")) for folder in (tmp_path / "run", one)]
    assert logged[0].keys() == logged[1].keys() and logged[0]["D_GAN"][1][1] > 0
    for name in logged[0]:
        assert [i for i, _ in logged[0][name]] == [i for i, _ in logged[1][name]] == [1, 2, 3]
        for (_, x), (_, y) in zip(logged[0][name], logged[1][name]):
            assert x == pytest.approx(y, rel=1e-4, abs=1e-4), name

    # both resume from the chief's checkpoint and go on in step
    outputs, weights = _run_workers(tmp_path, "resumed", "--niter", "5", "--continue_train")
    for out in outputs:
        assert "resumed" in out and "done: 5 iterations" in out, out[-3000:]
    assert sorted(p.name for p in (run / "ckpt").glob("*.index")) == ["ckpt-3.index", "ckpt-5.index"]
    assert [line.split(")")[0] for line in (run / "loss_log.txt").read_text().splitlines()] == [
        f"(epoch: {1 + (i - 1) // 2}, iters: {i}" for i in range(1, 6)]
    from models import load_generator

    chief = load_generator(str(run / "generator.weights.h5"), lr_size=2)
    for saved, trained in zip(chief.weights, [weights[k] for k in weights.files]):
        np.testing.assert_array_equal(saved.numpy(), trained)


# -- the fresh interpreter's side ------------------------------------------------------------------------------
def _stand_in_identity():
    """A few-layer network shaped like FaceNet's bottleneck: L_id without the real weights."""
    import keras

    from models.identity import FACENET_INPUT_SIZE, IdentityNetwork

    size = FACENET_INPUT_SIZE
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 5, strides=8)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, name="Bottleneck")(x)
    x = keras.layers.BatchNormalization(name="Bottleneck_BatchNorm")(x)
    return IdentityNetwork.from_facenet(keras.Model(inputs, x))


def _close(a, b, what):
    """Equal to a relative 1e-4 of each tensor's largest value (a tensor's near-zero entries carry its noise)."""
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(float(np.abs(x).max()), 1e-12)
        assert np.abs(x - y).max() <= 1e-4 * scale, f"{what} {i}: max diff {np.abs(x - y).max()} of {scale}"


def _adam_close(a, b, learning_rate, what):
    """Weights after Adam updates from gradients that agree to 1e-4: equal to a relative 1e-4 but for a few.

    Adam's first steps move a weight by about learning_rate * sign(gradient), so where the gradient is
    ~0 its summation-order noise decides part of a step: those few weights (~1e-5 of them) may differ
    by a fraction of a step (measured: 0.25 of one on an AVX-512 EPYC, 0.42 on an AVX2 one, whose
    kernels sum in another order); a replica that applied only its own gradients would differ by whole
    steps, in most weights.
    """
    outside = total = 0
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = x.numpy(), y.numpy()
        diff = np.abs(x - y)
        assert diff.max() < learning_rate, f"{what} {i}: max diff {diff.max()}"
        outside += int((diff > 1e-4 * np.abs(x)).sum())
        total += x.size
    assert outside <= 1e-4 * total, f"{what}: {outside} of {total} differ by more than 1e-4"


def _state(trainer):
    """Every checkpointed value of a trainer, in a fixed order."""
    step, state = trainer.step, trainer.state
    variables = (step.generator.weights + step.discriminator.weights + step.g_optimizer.variables
                 + step.d_optimizer.variables + [state.iteration, state.epoch, state.position])
    return [v.numpy() for v in variables]


def _replicas(folder):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import models.identity
    from options.train_options import TrainOptions
    from training.errors import TrainingError
    from training.trainer import Trainer

    models.identity.load_identity_network = lambda *_args, **_kwargs: _stand_in_identity()
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def trainer(strategy, name, *extra):
        opt = TrainOptions().parse(DATA + ["--batchSize", "4", "--lambda_id", "2", "--gan_start_iter", "1",
                                           "--checkpoint_path", str(folder), "--save_path", name, *extra])
        return Trainer(opt, strategy)

    def summed(trainer, grads):
        return [trainer.strategy.reduce("SUM", g, axis=None).numpy() for g in grads]

    a, b = trainer(one, "one"), trainer(two, "two")
    for x, y in zip(_state(a) + a.step.id_net.model.get_weights(), _state(b) + b.step.id_net.model.get_weights()):
        np.testing.assert_array_equal(x, y)  # the same seed, the same start
    batch_a = next(iter(a.batches(0, 0)))
    batch_b = next(iter(b.batches(0, 0)))
    assert batch_b["hr"].values[0].shape[0] == 2  # 2 replicas x 2 images
    for adversarial in (False, True):
        # the summed per-replica gradients: a wrong averaging would scale them, which Adam's first step hides
        logs_a, grads_a = a.step.g_compute(batch_a, adversarial)
        logs_b, grads_b = b.step.g_compute(batch_b, adversarial)
        _close([logs_a[k] for k in sorted(logs_a)], [logs_b[k] for k in sorted(logs_b)], "G loss")
        assert float(logs_a["L_id"]) > 0 and (float(logs_a["L_ad"]) > 0) == adversarial
        _close(summed(a, grads_a), summed(b, grads_b), "G gradient")
    d_logs_a, d_grads_a = a.step.d_compute(batch_a)
    d_logs_b, d_grads_b = b.step.d_compute(batch_b)
    _close([d_logs_a["D_loss"]], [d_logs_b["D_loss"]], "D loss")
    _close(summed(a, d_grads_a), summed(b, d_grads_b), "D gradient")

    for _ in range(2):  # a G update, then the GAN phase: a D update and an adversarial G update
        assert a.train_step(batch_a) is not None and b.train_step(batch_b) is not None
        a.state.iteration.assign_add(1)
        b.state.iteration.assign_add(1)
        _adam_close(a.step.generator.weights, b.step.generator.weights, a.opt.learning_rate, "G weight")
    _adam_close(a.step.discriminator.weights, b.step.discriminator.weights, a.opt.learning_rate, "D weight")
    assert int(a.step.d_optimizer.iterations.numpy()) == int(b.step.d_optimizer.iterations.numpy()) == 1

    # a checkpoint of 1 replica resumes under 2, and one of 2 under 1
    for source, strategy in ((a, two), (b, one)):
        source.state.position.assign(1)
        source.state.manager.save(checkpoint_number=int(source.state.iteration.numpy()))
        resumed = trainer(strategy, source.opt.save_path, "--continue_train")
        assert resumed.state.start().startswith("resumed")
        saved, restored = _state(source), _state(resumed)
        assert len(saved) == len(restored) > 100
        for x, y in zip(saved, restored):
            np.testing.assert_array_equal(x, y)
        assert int(resumed.state.position.numpy()) == 1 and int(resumed.step.g_optimizer.iterations.numpy()) == 2
    try:
        trainer(two, "odd", "--batchSize", "3")
    except TrainingError as err:
        print(err)
    print("replicas ok")


def _worker(weights_path, *argv):
    import train

    trainer = train.main(list(argv))
    np.savez(weights_path, *[w.numpy() for w in trainer.step.generator.weights + trainer.step.discriminator.weights])


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    scenario, *rest = sys.argv[1:]
    {"replicas": _replicas, "worker": _worker}[scenario](*rest)
