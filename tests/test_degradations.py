"""test.py --degradation and its controls (--blur_sigma, --noise_sigma, --jpeg_quality): the LR input each
makes, against independent computations (numpy block means, the released code's cv2 steps, OpenCV's
Gaussian blur and JPEG codec, Pillow's JPEG codec and bicubic resize)."""
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

from data.constants import COMPRESSED_MATCH_SIGMA
from data.degradation import DEGRADATIONS, InputDegradation, degrade_test, match_input
from options.test_options import TestOptions
from tests.references import block_means, consistent_with_input


def pillow_jpeg(image, quality=75):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def faces():
    return [released_hr(os.path.join(TEST_IMAGES, s + ".jpg")) for s in STEMS[:3]]


def cv2_jpeg(image, quality):
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def cv2_blur(hr, sigma):
    """float32 HR blurred by OpenCV, taps to 3 sigmas (at least 1 px), edges mirrored as TF's REFLECT."""
    radius = max(1, int(np.ceil(3 * sigma)))
    return cv2.GaussianBlur(hr.astype(np.float32), (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REFLECT_101)


def rounded_pyramid(image):
    """The training kernel on a float image: three 2x2 block means, each rounded half up."""
    for _ in range(3):
        image = np.floor(block_means(image, 2) + 0.5)
    return image


def to_uint8(image):
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def degraded(hr, kind="bilinear", name="", **controls):
    return degrade_test(hr, InputDegradation.of(kind, **controls), name)


def test_each_degradation_against_an_independent_computation():
    choices = next(a.choices for a in TestOptions().parser()._actions if a.dest == "degradation")
    assert tuple(choices) == DEGRADATIONS == ("bilinear", "area", "bicubic", "jpeg")
    for hr in faces():
        bilinear = degraded(hr, "bilinear")
        np.testing.assert_array_equal(bilinear, released_lr(hr))
        area = degraded(hr, "area")
        assert area.dtype == np.uint8 and area.shape == (16, 16, 3)
        np.testing.assert_array_equal(area, cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA))
        # INTER_AREA at 8x is the 8x8 mean; OpenCV's fixed-point rounding may move it by one level
        assert np.abs(area.astype(int) - np.floor(block_means(hr) + 0.5)).max() <= 1
        # TF's antialiased bicubic and Pillow's (both Keys a = -0.5, kernel widened 8x) round apart by 2 at most
        bicubic = degraded(hr, "bicubic")
        pillow = np.asarray(Image.fromarray(hr).resize((16, 16), Image.BICUBIC))
        assert np.abs(bicubic.astype(int) - pillow).max() <= 2 and np.abs(bicubic.astype(int) - pillow).mean() < 0.2
        assert np.abs(bicubic.astype(int) - area).max() > 5
        jpeg = degraded(hr, "jpeg")  # what --degradation jpeg has always given
        np.testing.assert_array_equal(jpeg, pillow_jpeg(released_lr(hr)))
        np.testing.assert_array_equal(jpeg, degraded(hr, jpeg_quality=75))
        assert np.abs(jpeg.astype(int) - bilinear).mean() > 1  # quality 75 on 16x16 visibly changes it
    with pytest.raises(ValueError, match="unknown degradation 'nearest'"):
        degraded(faces()[0], "nearest")
    with pytest.raises(ValueError, match="degradation 'jpeg' is JPEG quality 75: give no other quality"):
        InputDegradation.of("jpeg", jpeg_quality=60)


@pytest.mark.parametrize("sigma", [0.6, 1.5, 3.0])
def test_blur_is_opencvs_gaussian_of_the_hr_before_the_kernel(sigma):
    for hr in faces()[:2]:
        blurred = cv2_blur(hr, sigma)
        area = degraded(hr, "area", blur_sigma=sigma)
        np.testing.assert_array_equal(area, to_uint8(cv2.resize(blurred, (16, 16), interpolation=cv2.INTER_AREA)))
        np.testing.assert_array_equal(degraded(hr, blur_sigma=sigma), to_uint8(rounded_pyramid(blurred)))
        assert np.abs(area.astype(int) - degraded(hr, "area")).mean() > 0.2  # the blur did something


def test_jpeg_quality_is_opencvs_round_trip_of_the_lr():
    for hr in faces():
        for quality in (20, 60, 95):
            np.testing.assert_array_equal(degraded(hr, jpeg_quality=quality), cv2_jpeg(released_lr(hr), quality))
        np.testing.assert_array_equal(degraded(hr, "area", jpeg_quality=40),
                                      cv2_jpeg(cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA), 40))


def test_noise_on_a_flat_face_has_the_asked_sigma_and_depends_on_the_name_only():
    flat = np.full((128, 128, 3), 120, np.uint8)
    for sigma in (2.0, 8.0):
        noise = degraded(flat, "area", "a/face_1", noise_sigma=sigma).astype(float) - 120
        assert abs(noise.mean()) < 0.1 * sigma
        assert abs(noise.std() - np.hypot(sigma, np.sqrt(1 / 12))) < 0.1 * sigma  # rounding adds 1/12
        assert np.array_equal(noise, degraded(flat, "area", "a/face_1", noise_sigma=sigma).astype(float) - 120)
        other = degraded(flat, "area", "a/face_2", noise_sigma=sigma).astype(float) - 120
        assert abs(np.corrcoef(noise.ravel(), other.ravel())[0, 1]) < 0.15
    np.testing.assert_array_equal(degraded(flat, "area", noise_sigma=0), flat[:16, :16])


def test_controls_combine_in_the_stated_order():
    """blur of the HR, kernel, 8-bit rounding, noise, JPEG. The noise a name draws is read off a flat face
    (whole grey levels added to a whole-level input round the same as on the face)."""
    controls = {"blur_sigma": 1.2, "noise_sigma": 3.0, "jpeg_quality": 50}
    for i, hr in enumerate(faces()):
        name = f"person/{i}"
        noise = degraded(np.full_like(hr, 128), "area", name, noise_sigma=3.0).astype(int) - 128
        shrunk = to_uint8(cv2.resize(cv2_blur(hr, 1.2), (16, 16), interpolation=cv2.INTER_AREA))
        expected = cv2_jpeg(np.clip(shrunk.astype(int) + noise, 0, 255).astype(np.uint8), 50)
        np.testing.assert_array_equal(degraded(hr, "area", name, **controls), expected)
    assert InputDegradation.of("area", **controls).label() == "area, blur 1.2, noise 3, JPEG 50"
    assert InputDegradation.of("jpeg").label() == "bilinear, JPEG 75"


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


COMBINED = ["--degradation", "area", "--blur_sigma", "1.2", "--noise_sigma", "3", "--jpeg_quality", "60"]


@pytest.mark.parametrize("kind", ["combined", "jpeg"])
@pytest.mark.slow
def test_test_py_feeds_the_model_the_chosen_lr(kind, generator, tmp_path):  # noqa: F811
    src = tmp_path / "faces"
    src.mkdir()
    stems = STEMS[:2]
    for stem in stems:
        shutil.copy(os.path.join(TEST_IMAGES, stem + ".jpg"), src)
    out = tmp_path / "out"
    argv = COMBINED if kind == "combined" else ["--degradation", "jpeg"]
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", src, "--image_save_path", out,
                         *argv, "--num_figures", 0, *NO_HEAVY)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    hrs = [released_hr(os.path.join(TEST_IMAGES, s + ".jpg")) for s in stems]
    if kind == "combined":
        assert "| input: area, blur 1.2, noise 3, JPEG 60 |" in result.stdout
        assert {k: summary[k] for k in ("degradation", "kernel", "blur_sigma", "noise_sigma", "jpeg_quality")} == {
            "degradation": "area", "kernel": "area", "blur_sigma": 1.2, "noise_sigma": 3.0, "jpeg_quality": 60}
        lrs = []
        for stem, hr in zip(stems, hrs):
            # each face's noise, read off a flat face of its name (test_controls_combine_in_the_stated_order)
            noise = degrade_test(np.full_like(hr, 128), InputDegradation.of("area", noise_sigma=3), stem)
            shrunk = to_uint8(cv2.resize(cv2_blur(hr, 1.2), (16, 16), interpolation=cv2.INTER_AREA))
            lrs.append(cv2_jpeg(np.clip(shrunk.astype(int) + noise - 128, 0, 255).astype(np.uint8), 60))
    else:
        assert "| input: bilinear, JPEG 75 |" in result.stdout
        assert (summary["degradation"], summary["kernel"], summary["jpeg_quality"]) == ("jpeg", "bilinear", 75)
        lrs = [pillow_jpeg(released_lr(hr)) for hr in hrs]
    assert summary["match_sigma"] == COMPRESSED_MATCH_SIGMA   # both inputs are compressed
    expected = super_resolve(generator, lrs, COMPRESSED_MATCH_SIGMA)
    for stem, hr, lr, sr in zip(stems, hrs, lrs, expected):
        assert_close_images(read_rgb(out / (stem + "_SR.png")), sr)
        bicubic = read_rgb(out / (stem + "_LR.png"))
        np.testing.assert_array_equal(bicubic, cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
        trained_way = cv2.resize(released_lr(hr), (128, 128), interpolation=cv2.INTER_CUBIC)
        assert not np.array_equal(bicubic, trained_way)  # the input was not the training degradation's


class RecordingModel:
    """Stands in for the generator: keeps every LR batch it is given, returns its nearest-neighbour x8."""

    def __init__(self):
        self.inputs = []

    def predict(self, lr_batch):
        self.inputs.append(lr_batch.astype(np.uint8))
        return np.repeat(np.repeat(lr_batch, 8, axis=1), 8, axis=2), None


def test_noise_is_the_same_for_any_workers_order_batch_or_place_and_on_a_rerun(tmp_path, monkeypatch):
    from evaluation.faces import evaluate_faces
    from utils import output_stems

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # parse() sets it; the monkeypatch puts it back
    src = tmp_path / "faces"
    for stem in STEMS[:3]:
        (src / stem).mkdir(parents=True)
        shutil.copy(os.path.join(TEST_IMAGES, stem + ".jpg"), src / stem)
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"")
    shutil.copytree(src, tmp_path / "moved")
    seen = []
    for folder, workers, batch, reverse in ((src, 1, 1, False), (src, 2, 2, True), (tmp_path / "moved", 1, 3, False)):
        files = sorted(str(p) for p in folder.rglob("*.jpg"))[::-1 if reverse else 1]
        stems = dict(zip(files, output_stems(files, str(folder))))
        opt = TestOptions().parse(["--test_path", str(folder), "--weight_path", str(weights), "--workers", str(workers),
                                   "--batchSize", str(batch), "--noise_sigma", "6", "--num_figures", "0"])
        model = RecordingModel()
        out = tmp_path / f"out_{workers}_{batch}"
        run = evaluate_faces(opt, files, model, None, False, str(out), stems)
        assert run.processed == 3 and len(list(out.rglob("*_SR.png"))) == 3
        lrs = np.concatenate(model.inputs[1:])  # the first batch is the untimed warm-up call
        seen.append({stems[path]: lr for path, lr in zip(files, lrs)})
    assert [sorted(by_name) for by_name in seen] == [sorted(os.path.join(s, s) for s in STEMS[:3])] * 3
    for by_name in seen[1:]:
        for name, lr in by_name.items():
            np.testing.assert_array_equal(lr, seen[0][name])
    for stem in STEMS[:3]:
        clean = released_lr(released_hr(str(src / stem / (stem + ".jpg"))))
        noise = seen[0][os.path.join(stem, stem)].astype(int) - clean
        assert 3 < noise.std() < 9, noise.std()  # the noise asked for, on each face


@pytest.mark.parametrize("argv, words", [
    (["--degradation", "jpeg", "--lr_input"], "--degradation jpeg: the LR face is made from an HR one; this does "
                                              "not apply to --lr_input"),
    (["--degradation", "area", "--real_world"], "does not apply to --real_world"),
    (["--noise_sigma", "2", "--jpeg_quality", "50", "--lr_input"], "--noise_sigma, --jpeg_quality: the LR face"),
    (["--blur_sigma", "1", "--real_world"], "--blur_sigma: the LR face is made from an HR one; this does not "
                                            "apply to --real_world"),
    (["--blur_sigma", "-0.5"], "argument --blur_sigma: must be 0 to 10 HR px, got -0.5"),
    (["--blur_sigma", "11"], "argument --blur_sigma: must be 0 to 10 HR px, got 11"),
    (["--noise_sigma", "-1"], "argument --noise_sigma: must be 0 to 255 grey levels, got -1"),
    (["--noise_sigma", "nan"], "argument --noise_sigma: must be 0 to 255 grey levels, got nan"),
    (["--jpeg_quality", "0"], "argument --jpeg_quality: must be 1 to 100, got 0"),
    (["--jpeg_quality", "101"], "argument --jpeg_quality: must be 1 to 100, got 101"),
    (["--jpeg_quality", "7.5"], "argument --jpeg_quality: must be 1 to 100, got 7.5"),
    (["--degradation", "jpeg", "--jpeg_quality", "60"], "--degradation jpeg is bilinear with --jpeg_quality 75"),
    (["--blur_sigma", "6", "--crop_size", "16", "--load_size", "16"], "--blur_sigma 6.0 reaches 3 sigmas, beyond "
                                                                      "the 16 px face"),
    (["--force_large"], "--force_large is for --real_world"),
])
def test_flags_that_cannot_act_are_refused(argv, words, capsys):
    with pytest.raises(SystemExit):
        TestOptions().parse(argv + ["--test_path", TEST_IMAGES])
    err = capsys.readouterr().err
    assert words in err and err.count("error:") == 1, err


def test_match_input_with_sigma_smooths_the_correction_first():
    """--match_sigma: the input's miss is smoothed by a Gaussian (SciPy's, reflected borders) before the
    bicubic x8; it still takes away a smooth colour error, but no longer puts back an input's fine noise."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(7)
    hr = released_hr(os.path.join(TEST_IMAGES, STEMS[1] + ".jpg"))
    clean = block_means(hr)
    noise = rng.normal(0, 8, clean.shape)
    lr = np.clip(clean + noise, 0, 255).astype(np.float32)   # a noisy input
    sr = hr.astype(np.float32) + np.float32([12, -5, 4])         # a denoised output with a colour cast
    miss = lr - cv2.resize(sr, (16, 16), interpolation=cv2.INTER_AREA)
    smoothed = gaussian_filter(miss.astype(np.float64), (1.5, 1.5, 0), mode="reflect", truncate=4.0)
    expected = sr + cv2.resize(smoothed.astype(np.float32), (128, 128), interpolation=cv2.INTER_CUBIC)
    got = match_input(sr, lr, 1.5)
    np.testing.assert_allclose(got, expected, atol=0.01)
    full = match_input(sr, lr)
    for out in (got, full):   # the cast is gone either way
        assert np.abs((block_means(out) - lr).mean(axis=(0, 1))).max() < 0.5
    # the full step makes the output's means the noisy input's; the smoothed one keeps most noise out
    back_full, back_smooth = ((block_means(out) - lr).std() for out in (full, got))
    put_back = [np.corrcoef((block_means(out) - clean).ravel(), noise.ravel())[0, 1] for out in (full, got)]
    assert back_smooth > 2.5 * back_full, (back_full, back_smooth)
    assert put_back[0] > 0.95 and put_back[1] < 0.5, put_back


def test_match_sigma_defaults_to_smoothing_only_for_inputs_made_compressed_or_noisy():
    base = ["--gpu_ids", "-1", "--test_path", TEST_IMAGES]
    expect = {(): 0.0, ("--degradation", "area"): 0.0, ("--blur_sigma", "1"): 0.0,
              ("--jpeg_quality", "60"): COMPRESSED_MATCH_SIGMA, ("--degradation", "jpeg"): COMPRESSED_MATCH_SIGMA,
              ("--noise_sigma", "3"): COMPRESSED_MATCH_SIGMA, ("--jpeg_quality", "60", "--raw_output"): 0.0,
              ("--jpeg_quality", "60", "--match_sigma", "0"): 0.0, ("--match_sigma", "0.7"): 0.7,
              ("--real_world",): None}   # None: chosen per photo (faces.jpeg)
    for extra, sigma in expect.items():
        assert TestOptions().parse(base + list(extra)).match_sigma == sigma, extra
    for bad in (["--match_sigma", "-1"], ["--match_sigma", "nan"], ["--match_sigma", "1", "--raw_output"]):
        with pytest.raises(SystemExit):
            TestOptions().parse(base + bad)
