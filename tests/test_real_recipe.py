"""train.py --degradation_recipe real: each draw does what it says, against OpenCV and NumPy; seeded and resumable."""
import dataclasses

import cv2
import numpy as np
import pytest
import tensorflow as tf
from test_pipeline import batches, elements, folder, make_config, same_batches  # noqa: F401 (folder: a fixture)

from data.degradation import KERNELS, RealRecipe, gaussian_blur, real_degrade
from data.pipeline import TrainData
from options.train_options import TrainOptions

NOTHING = RealRecipe(clean=0.0, blur=0.0, blur_sigma=(0.0, 0.0), noise=0.0, noise_sigma=(0.0, 0.0), jpeg=0.0,
                     jpeg_quality=(75, 75))
DEFAULTS = TrainOptions().parser().parse_args([])


def drawn(hr, recipe, count, stream=0):
    """LR inputs of `hr` for seeds (stream, 0..count-1), as uint8."""
    hr = tf.constant(hr, tf.float32)
    return np.stack([real_degrade(hr, tf.constant([stream, i], tf.int64), recipe).numpy() for i in range(count)]
                    ).astype(np.uint8)


def face(seed=0, side=128):
    """A smooth random colour image with edges: something JPEG and the kernels treat differently."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.uniform(0, 255, (side // 8, side // 8, 3)).astype(np.float32), (side, side),
                       interpolation=cv2.INTER_CUBIC)
    image[side // 3: side // 2] = rng.uniform(0, 255, 3)
    return np.clip(np.rint(image), 0, 255)


def area(hr):
    return cv2.resize(hr.astype(np.float32), None, fx=1 / 8, fy=1 / 8, interpolation=cv2.INTER_AREA)


def test_jpeg_is_opencvs_at_a_quality_drawn_in_the_range():
    hr = face(1)
    low, high = 40, 60
    out = drawn(hr, dataclasses.replace(NOTHING, jpeg=1.0, jpeg_quality=(low, high)), 24)
    qualities = []
    for lr in out:
        # the area kernel is the one whose input we can rebuild here; others are checked below
        base = np.clip(np.rint(area(hr)), 0, 255).astype(np.uint8)
        found = [q for q in range(1, 101)
                 if np.array_equal(lr, cv2.imdecode(cv2.imencode(".jpg", base[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
                                                    [1], cv2.IMREAD_COLOR)[..., ::-1])]
        if found:
            qualities.append(found)
    assert qualities, "no sample matched OpenCV's JPEG of the area-shrunk input at any quality"
    assert all(any(low <= q <= high for q in found) for found in qualities)
    assert len({found[0] for found in qualities}) > 1  # drawn, not fixed


def test_noise_sigma_against_numpy():
    flat = np.full((128, 128, 3), 128.0)  # every kernel gives 128: what remains is the noise
    sigma = 3.0
    out = drawn(flat, dataclasses.replace(NOTHING, noise=1.0, noise_sigma=(sigma, sigma)), 40).astype(float) - 128
    # rounding to 8 bits adds a uniform error of variance 1/12
    assert np.std(out) == pytest.approx(np.sqrt(sigma ** 2 + 1 / 12), rel=0.02)
    assert abs(np.mean(out)) < 0.05
    spread = drawn(flat, dataclasses.replace(NOTHING, noise=1.0, noise_sigma=(0.0, 5.0)), 40).astype(float) - 128
    per_sample = spread.reshape(40, -1).std(axis=1)
    assert per_sample.max() <= 5.2 and per_sample.min() < 1.0 and per_sample.max() > 4.0


def test_blur_is_a_gaussian_as_opencvs():
    image = face(2)
    for sigma in (0.5, 1.5):
        radius = int(np.ceil(3 * sigma))
        expected = cv2.GaussianBlur(image.astype(np.float32), (2 * radius + 1, 2 * radius + 1), sigma,
                                    borderType=cv2.BORDER_REFLECT_101)
        got = gaussian_blur(tf.constant(image, tf.float32), tf.constant(sigma), radius).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_kernels_and_shares():
    hr = face(3)
    out = drawn(hr, NOTHING, 60)
    paper = np.rint(cv2.resize(cv2.resize(cv2.resize(hr.astype(np.uint8), (64, 64)), (32, 32)), (16, 16)))
    by_area = np.clip(np.rint(area(hr)), 0, 255)
    kinds = [("area" if np.array_equal(lr, by_area) else "bilinear" if np.array_equal(lr, paper) else "other")
             for lr in out]
    assert {"area", "bilinear", "other"} == set(kinds) and len(KERNELS) == 3  # bicubic is the third
    clean = drawn(hr, dataclasses.replace(NOTHING, clean=0.25, noise=1.0, noise_sigma=(5.0, 5.0)), 200, stream=1)
    share = np.mean([np.array_equal(lr, paper) for lr in clean])
    assert 0.25 - 0.09 < share < 0.25 + 0.09  # 3 standard errors of 200 draws


def test_real_recipe_is_seeded_and_resumes(folder):  # noqa: F811
    recipe = RealRecipe(clean=0.25, blur=0.5, blur_sigma=(0.2, 1.5), noise=0.5, noise_sigma=(0.0, 5.0), jpeg=0.8,
                        jpeg_quality=(30, 95))
    config = make_config(folder, load_size=64, crop_size=64, seed=5, real=recipe)
    data = TrainData(config)
    full = batches(data, epoch=1)
    assert same_batches(batches(TrainData(config), epoch=1), full)
    assert same_batches(batches(data, epoch=1, offset=4), full[2:])
    tf.random.set_seed(99)  # the global seed plays no part
    assert same_batches(batches(data, epoch=1), full)
    assert not same_batches(batches(data, epoch=2), full)
    paper = elements(batches(TrainData(dataclasses.replace(config, real=None)), epoch=1))
    real = elements(full)
    np.testing.assert_array_equal(real["hr"], paper["hr"])  # the same faces and augmentation, other inputs
    assert not np.array_equal(real["lr"], paper["lr"])
    all_clean = elements(batches(TrainData(dataclasses.replace(config, real=dataclasses.replace(recipe, clean=1.0))),
                                 epoch=1))
    np.testing.assert_array_equal(all_clean["lr"], paper["lr"])  # a clean draw is the paper's input


def test_options_make_the_recipe():
    from data.pipeline import DataConfig

    assert DataConfig.from_options(DEFAULTS).real is None
    opt = TrainOptions().parser().parse_args(["--degradation_recipe", "real", "--real_jpeg_quality", "50", "90"])
    real = DataConfig.from_options(opt).real
    assert real.jpeg_quality == (50, 90) and real.clean == DEFAULTS.real_clean and real.noise_sigma == (0.0, 5.0)


@pytest.mark.parametrize("argv", [["--real_noise", "1.5"], ["--real_jpeg_quality", "90", "50"],
                                  ["--real_blur_sigma", "0", "11"]])
def test_options_refuse_impossible_ranges(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        TrainOptions().parse(["--train_path", str(tmp_path), "--gpu_ids", "-1", *argv])
    assert exit_.value.code == 2 and argv[0] in capsys.readouterr().err


def test_real_options_without_the_real_recipe_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        TrainOptions().parse(["--train_path", str(tmp_path), "--gpu_ids", "-1", "--real_jpeg", "0.5",
                              "--real_noise_sigma", "0", "3"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--real_noise_sigma, --real_jpeg set the real-input recipe" in err
    # the defaults given explicitly change nothing, so they are not refused
    opt = TrainOptions().parse(["--train_path", str(tmp_path), "--gpu_ids", "-1", "--real_blur_sigma", "0.2", "1.5"])
    assert opt.degradation_recipe == "paper"
