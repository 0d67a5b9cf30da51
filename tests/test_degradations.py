"""test.py --degradation: the LR input each choice makes, against independent computations
(numpy block means, the released code's cv2 steps, Pillow's JPEG codec)."""
import io
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image
from test_cli_test import (  # noqa: F401
    NO_HEAVY,
    STEMS,
    TEST_IMAGES,
    assert_close_images,
    generator,
    read_rgb,
    released_hr,
    released_lr,
    run_test_py,
    super_resolve,
)

from data.degradation import DEGRADATIONS, degrade_test, match_input
from options.test_options import TestOptions
from tests.references import block_means, consistent_with_input


def pillow_jpeg(image, quality=75):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def faces():
    return [released_hr(os.path.join(TEST_IMAGES, s + ".jpg")) for s in STEMS[:3]]


def test_each_degradation_against_an_independent_computation():
    choices = next(a.choices for a in TestOptions().parser()._actions if a.dest == "degradation")
    assert tuple(choices) == DEGRADATIONS == ("bilinear", "area", "jpeg")
    for hr in faces():
        bilinear = degrade_test(hr, "bilinear")
        np.testing.assert_array_equal(bilinear, released_lr(hr))
        area = degrade_test(hr, "area")
        assert area.dtype == np.uint8 and area.shape == (16, 16, 3)
        # INTER_AREA at 8x is the 8x8 mean; OpenCV's fixed-point rounding may move it by one level
        assert np.abs(area.astype(int) - np.floor(block_means(hr) + 0.5)).max() <= 1
        jpeg = degrade_test(hr, "jpeg")
        np.testing.assert_array_equal(jpeg, pillow_jpeg(released_lr(hr)))
        assert np.abs(jpeg.astype(int) - bilinear).mean() > 1  # quality 75 on 16x16 visibly changes it
    with pytest.raises(ValueError, match="unknown degradation 'nearest'"):
        degrade_test(faces()[0], "nearest")


def test_match_input_is_one_back_projection_step():
    """test.py's default output: the generator's plus the bicubic x8 of what its 8x8 means miss of the
    input. Against a NumPy computation, and it must bring the output's block means to the input."""
    rng = np.random.default_rng(5)
    hr = released_hr(os.path.join(TEST_IMAGES, STEMS[0] + ".jpg"))
    lr = released_lr(hr)
    # a stand-in output: the HR face with a smooth colour cast and noise, as a generator's error
    ramp = np.linspace(-20, 20, 128, dtype=np.float32)[None, :, None] * np.float32([1.0, 0.3, -0.6])
    sr = hr.astype(np.float32) + ramp + rng.normal(0, 6, hr.shape).astype(np.float32)
    got = match_input(sr, lr)
    np.testing.assert_array_less(np.abs(np.clip(np.round(got), 0, 255) - consistent_with_input(sr, lr)), 1.01)
    before = np.abs(block_means(sr) - lr).mean()
    after = np.abs(block_means(got) - lr).mean()
    assert before > 5 and after < before / 4, (before, after)
    psnr = [10 * np.log10(255 ** 2 / np.mean((np.clip(x, 0, 255) - hr) ** 2)) for x in (sr, got)]
    assert psnr[1] > psnr[0] + 1, psnr   # the cast is gone, the noise finer than 8 px stays


@pytest.mark.parametrize("kind", ["area", "jpeg"])
@pytest.mark.slow
def test_test_py_feeds_the_model_the_chosen_lr(kind, generator, tmp_path):  # noqa: F811
    src = tmp_path / "faces"
    src.mkdir()
    stems = STEMS[:2]
    for stem in stems:
        shutil.copy(os.path.join(TEST_IMAGES, stem + ".jpg"), src)
    out = tmp_path / "out"
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", src, "--image_save_path", out,
                         "--degradation", kind, "--num_figures", 0, *NO_HEAVY)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "summary.json").read_text())["degradation"] == kind
    hrs = [released_hr(os.path.join(TEST_IMAGES, s + ".jpg")) for s in stems]
    if kind == "area":
        lrs = [cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA) for hr in hrs]
    else:
        lrs = [pillow_jpeg(released_lr(hr)) for hr in hrs]
    expected = super_resolve(generator, lrs)
    for stem, hr, lr, sr in zip(stems, hrs, lrs, expected):
        assert_close_images(read_rgb(out / (stem + "_SR.png")), sr)
        bicubic = read_rgb(out / (stem + "_LR.png"))
        np.testing.assert_array_equal(bicubic, cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
        trained_way = cv2.resize(released_lr(hr), (128, 128), interpolation=cv2.INTER_CUBIC)
        assert not np.array_equal(bicubic, trained_way)  # the input was not the training degradation's


@pytest.mark.parametrize("argv, words", [
    (["--degradation", "jpeg", "--lr_input"], "does not apply to --lr_input"),
    (["--degradation", "area", "--real_world"], "does not apply to --real_world"),
    (["--force_large"], "--force_large is for --real_world"),
])
def test_flags_that_cannot_act_are_refused(argv, words, capsys):
    from options.test_options import TestOptions

    with pytest.raises(SystemExit):
        TestOptions().parse(argv + ["--test_path", TEST_IMAGES])
    assert words in capsys.readouterr().err
