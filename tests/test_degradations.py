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

from data.degradation import DEGRADATIONS, degrade_test
from options.test_options import TestOptions


def pillow_jpeg(image, quality=75):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def block_mean(hr, k=8):
    h, w, c = hr.shape
    return np.floor(hr.reshape(h // k, k, w // k, k, c).astype(np.float64).mean(axis=(1, 3)) + 0.5)


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
        assert np.abs(area.astype(int) - block_mean(hr)).max() <= 1
        jpeg = degrade_test(hr, "jpeg")
        np.testing.assert_array_equal(jpeg, pillow_jpeg(released_lr(hr)))
        assert np.abs(jpeg.astype(int) - bilinear).mean() > 1  # quality 75 on 16x16 visibly changes it
    with pytest.raises(ValueError, match="unknown degradation 'nearest'"):
        degrade_test(faces()[0], "nearest")


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
