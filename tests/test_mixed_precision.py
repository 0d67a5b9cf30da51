"""train.py --mixed_precision on the CPU: float16 compute, float32 outputs and losses, loss scaling.

Tiny (16x16 HR): TensorFlow's float16 convolution gradients are very slow on the CPU.
"""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from models import load_generator
from options.train_options import TrainOptions
from training.gan_step import LossScale
from training.trainer import Trainer

TINY = ["--train_path", os.path.join(ROOT, "datasets", "train"), "--test_path", os.path.join(ROOT, "datasets", "test"),
        "--load_size", "16", "--crop_size", "16", "--batchSize", "1", "--lambda_id", "0", "--val_images", "2",
        "--gpu_ids", "-1", "--print_iter_freq", "1", "--display_epoch_freq", "0", "--display_iter_freq", "0",
        "--cache_memory_mb", "64", "--mixed_precision", "--val_iter_freq", "0", "--save_epoch_freq", "0"]


def test_mixed_precision_trains_skips_overflows_and_saves_float32_weights(tmp_path):
    trainer = Trainer(TrainOptions().parse(TINY + ["--checkpoint_path", str(tmp_path), "--niter", "2",
                                                         "--gan_start_iter", "1", "--save_iter_freq", "0"]))
    assert keras.mixed_precision.global_policy().name == "float32"  # set only while the networks were made
    step = trainer.step
    assert step.generator.dtype_policy.name == step.discriminator.dtype_policy.name == "mixed_float16"
    assert all(w.dtype == "float32" for w in step.generator.weights + step.discriminator.weights)
    lr = tf.random.uniform([1, 2, 2, 3], 0, 255)
    outputs = trainer.step.generator(lr)
    assert [o.dtype for o in outputs] == [tf.float32] * 4
    assert trainer.step.discriminator(outputs[0]).dtype == tf.float32
    before = [w.numpy() for w in trainer.step.generator.weights]

    # an overflowing loss scale: the update is skipped and the scale halved, not a fatal NaN
    scale = trainer.step.loss_scale["G"].value
    scale.assign(2.0 ** 100)
    assert trainer.train_step(next(iter(trainer.batches(0, 0)))) is None
    assert float(scale.numpy()) == 2.0 ** 99 and step.overflow_steps == 1 and step.skipped_batches == 0
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, trainer.step.generator.weights))
    scale.assign(LossScale.INITIAL)
    trainer.step.overflow_steps = 0

    trainer.fit()
    assert int(trainer.state.iteration.numpy()) == 2 and int(trainer.step.d_optimizer.iterations.numpy()) == 1
    assert int(trainer.step.g_optimizer.iterations.numpy()) == 2  # overflow steps do not reach the optimizer
    with open(tmp_path / "experiment" / "loss_log.txt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == 2 and "nan" not in " ".join(lines).lower() and "inf" not in " ".join(lines).lower()
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, trainer.step.generator.weights))
    assert float(scale.numpy()) == LossScale.INITIAL / 2 ** trainer.step.overflow_steps

    # the saved generator loads into a float32 one, from the export and from the training checkpoint
    prefix = trainer.state.manager.latest_checkpoint
    assert float(tf.train.load_checkpoint(prefix).get_tensor(
        "loss_scale/G_value/.ATTRIBUTES/VARIABLE_VALUE")) == float(scale.numpy())
    for source in (str(tmp_path / "experiment"), prefix):
        generator = load_generator(source, lr_size=2)
        assert generator.dtype_policy.name == "float32"
        for saved, trained in zip(generator.weights, trainer.step.generator.weights):
            np.testing.assert_array_equal(saved.numpy(), trained.numpy())
        assert np.isfinite(generator(lr)[0].numpy()).all()


@pytest.mark.slow
def test_test_py_mixed_precision_matches_float32(tmp_path):
    """test.py --mixed_precision: float16 compute gives the float32 model's faces to within float16 rounding."""
    import json
    import subprocess
    import sys

    import cv2

    from data.degradation import degrade
    from data.images import list_images, prepare_hr, read_image
    from metrics.quality import psnr
    from models import build_generator, save_generator
    from utils import to_uint8

    keras.utils.set_random_seed(5)
    generator = build_generator(lr_size=2)
    generator.rgb.kernel.assign(generator.rgb.kernel * 15.0)  # outputs across [0, 255], not near 0
    generator.rgb.bias.assign([128.0, 128.0, 128.0])
    weights = tmp_path / "generator.weights.h5"
    save_generator(generator, str(weights))
    faces = os.path.join(ROOT, "datasets", "test")
    files = list_images(faces)
    hr = np.stack([prepare_hr(read_image(f), 16, 16) for f in files])
    want = to_uint8(generator(degrade(hr).numpy().astype(np.float32))[0].numpy())

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--mixed_precision", "--weight_path",
                             str(weights), "--load_size", "16", "--crop_size", "16", "--image_save_path", str(out),
                             "--num_figures", "0", "--raw_output",
                             "--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "mixed_float16" and summary["images"] == len(files)
    for path, expected in zip(files, want):
        stem = os.path.splitext(os.path.basename(path))[0]
        got = cv2.cvtColor(cv2.imread(str(out / f"{stem}_SR.png")), cv2.COLOR_BGR2RGB)
        assert not np.array_equal(got, np.zeros_like(got))
        # float16 keeps ~3 significant digits: a grey level or two on [0, 255], nothing like a wrong model
        assert psnr(got, expected) > 40.0, stem
