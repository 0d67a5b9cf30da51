"""train.py's defaults that nothing else checks: the paper's GAN switch and D betas, loss scaling, best/, inputs."""
import json
import os
import re

import cv2
import numpy as np
import pytest
import tensorflow as tf
from skimage.metrics import peak_signal_noise_ratio
from test_train import ROOT, loss_lines, options, run

from data.images import list_images
from data.pipeline import DataConfig, TrainData, load_eval_set
from models import load_generator
from training.gan_step import LossScale
from training.trainer import Trainer


@pytest.fixture(scope="module")
def eleven(tmp_path_factory):
    """A default-schedule run of 11 iterations, validated at 5, 10 and 11."""
    folder = tmp_path_factory.mktemp("eleven")
    return folder, run(folder, "--niter", "11", "--val_iter_freq", "5", "--save_epoch_freq", "0",
                       "--save_iter_freq", "0")


def test_gan_phase_starts_at_the_papers_1_2_of_1_32(eleven):
    folder, trainer = eleven
    # 1.2M / 1.32M of 11 iterations: 10 without the adversarial term, the 11th with it
    parsed = [re.search(r"iters: (\d+)\).* G_GAN: (\S+) D_GAN: (\S+)", line) for line in loss_lines(folder)]
    assert [int(m.group(1)) for m in parsed] == list(range(1, 12))
    assert all(float(m.group(2)) == 0 and float(m.group(3)) == 0 for m in parsed[:10])
    assert float(parsed[10].group(2)) > 0 and float(parsed[10].group(3)) > 0
    assert trainer.step.weights[False].beta == 0 and trainer.step.weights[True].beta == 5e-3


def test_discriminator_adam_betas_paper_by_default_code_on_request(eleven, tmp_path):
    _, trainer = eleven
    betas = lambda optimizer: (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon)  # noqa: E731
    assert betas(trainer.step.g_optimizer) == (0.9, 0.999, 1e-8)
    assert betas(trainer.step.d_optimizer) == (0.5, 0.9, 1e-8)
    code = Trainer(options(tmp_path, "--niter", "1", "--d_betas", "code"))
    assert betas(code.step.d_optimizer) == (0.9, 0.999, 1e-8)
    assert betas(code.step.g_optimizer) == (0.9, 0.999, 1e-8)


def test_best_holds_the_best_validation_psnr_generator(eleven):
    folder, trainer = eleven
    run_folder = folder / "experiment"
    with open(run_folder / "validation.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [5, 10, 11]
    best = json.loads((run_folder / "best" / "best.json").read_text())
    top = max(rows, key=lambda r: float(r[1]))
    assert best["iteration"] == int(top[0]) and best["psnr"] == pytest.approx(float(top[1]), abs=5e-5)
    # the file in best/ gives that PSNR, computed here with scikit-image
    generator = load_generator(str(run_folder / "best"), lr_size=8)
    sr = np.clip(np.round(generator(tf.constant(trainer.log.val_lr))[0].numpy()), 0, 255).astype(np.uint8)
    psnr = np.mean([peak_signal_noise_ratio(h, s, data_range=255) for h, s in zip(trainer.log.val_hr, sr)])
    assert psnr == pytest.approx(best["psnr"], abs=1e-6)
    # a worse generator validated later leaves best/ alone
    saved = (run_folder / "best" / "generator.weights.h5").read_bytes()
    for w in trainer.step.generator.trainable_weights:
        w.assign(w * 0.5)
    assert trainer.log.validate(int(trainer.state.iteration.numpy()))["psnr"] < best["psnr"]
    assert json.loads((run_folder / "best" / "best.json").read_text()) == best
    assert (run_folder / "best" / "generator.weights.h5").read_bytes() == saved


def test_loss_scale_doubles_after_2000_good_steps_and_halves_on_overflow():
    scale = LossScale("G")
    assert float(scale.value.numpy()) == 256
    for _ in range(1999):
        scale.update(True)
    assert float(scale.value.numpy()) == 256 and int(scale.good_steps.numpy()) == 1999
    scale.update(True)
    assert float(scale.value.numpy()) == 512 and int(scale.good_steps.numpy()) == 0
    scale.update(True)
    scale.update(False)
    assert float(scale.value.numpy()) == 256 and int(scale.good_steps.numpy()) == 0


def test_bmp_and_webp_faces_are_read_for_training_and_testing(tmp_path):
    source = os.path.join(ROOT, "datasets", "test")
    names = sorted(os.listdir(source))[:3]
    expected = {}
    folder = tmp_path / "faces"
    folder.mkdir()
    for name, ext, params in zip(names, (".bmp", ".webp", ".WEBP"), ([], [cv2.IMWRITE_WEBP_QUALITY, 101],
                                                                     [cv2.IMWRITE_WEBP_QUALITY, 101])):
        image = cv2.imread(os.path.join(source, name))
        stem = os.path.splitext(name)[0]
        assert cv2.imwrite(str(folder / (stem + ext)), image, params)  # BMP and quality 101 WebP: lossless
        expected[stem + ext] = image
    assert [os.path.basename(p) for p in list_images(str(folder))] == sorted(expected)
    opt = options(tmp_path, "--train_path", str(folder), "--test_path", str(folder), "--load_size", "128",
                  "--crop_size", "128")
    found, hr, _ = load_eval_set(DataConfig.from_options(opt), str(folder))
    assert found == sorted(expected)
    for name, face in zip(found, hr):
        side = min(expected[name].shape[:2])
        top, left = (expected[name].shape[0] - side) // 2, (expected[name].shape[1] - side) // 2
        square = expected[name][top:top + side, left:left + side]
        want = cv2.cvtColor(cv2.resize(square, (128, 128), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(face, want, err_msg=name)
    data = TrainData(DataConfig.from_options(opt))
    assert data.num_images == 3 and not data.unreadable
