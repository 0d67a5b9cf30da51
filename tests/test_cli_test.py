"""`python test.py` end to end, with a random-weight generator.

The expected SR images are computed here from the released code's data
recipe (cv2 only) and the in-memory generator, not through test.py's helpers.
Most runs switch the paper's heavy metrics off; tests/test_face_metrics_e2e.py runs them.
"""
import csv
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from conftest import ROOT
from models import build_generator, save_generator
from tests.references import consistent_with_input, read_rgb, released_hr

TEST_IMAGES = os.path.join(ROOT, "datasets", "test")
STEMS = sorted(os.path.splitext(n)[0] for n in os.listdir(TEST_IMAGES))
NO_HEAVY = ["--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net", "--no_brisque"]
BASE_COLUMNS = ["name", "psnr", "ssim", "psnr_y", "ssim_y", "bicubic_psnr", "bicubic_ssim"]
PAPER_KEYS = ["fr_psnr", "fr_ssim", "fr_images", "vif", "tar_algo_0.5", "tar_algo_0.6",
              "tar_net_0.02", "tar_net_0.04"]


def run_test_py(*args, env=None, timeout=400):
    return subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def released_lr(hr):
    for _ in range(3):
        hr = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
    return hr


def super_resolve(generator, lrs, sigma=0.0):
    """What test.py writes by default: each output made consistent with its input (that correction
    smoothed by `sigma` LR px, as test.py does for inputs it makes compressed or noisy)."""
    sr = generator(np.stack(lrs).astype(np.float32))[0].numpy()
    return [consistent_with_input(s, lr, sigma) for s, lr in zip(sr, lrs)]


def assert_close_images(got, expected):
    """Equal up to float rounding: at most 1 grey level apart, nearly everywhere identical."""
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """Random generator whose output spreads over [0, 255] (the raw init gives ~[-5, 8])."""
    keras.utils.set_random_seed(7)
    g = build_generator()
    g.rgb.kernel.assign(g.rgb.kernel * 15.0)
    g.rgb.bias.assign([128.0, 128.0, 128.0])
    folder = tmp_path_factory.mktemp("weights")
    save_generator(g, str(folder / "generator.weights.h5"))
    g.weights_folder = folder
    return g


@pytest.fixture(scope="module")
def hr_run(generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("hr") / "result"
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", TEST_IMAGES,
                         "--image_save_path", out, *NO_HEAVY)
    assert result.returncode == 0, result.stderr
    return out, result


def undocumented(out):
    """The files test.py wrote into `out` whose name (`<stem>` for a face's) the README's list lacks."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    names = set()
    for name in os.listdir(out):
        stem = next((s for s in STEMS + ["face0", "face1", "face2", "odd"] if name.startswith(s + "_")), None)
        names.add(name if stem is None else "<stem>" + name[len(stem):])
    return sorted(n for n in names if f"| `{n}` |" not in readme)


@pytest.mark.slow
def test_hr_mode_writes_every_output(hr_run):
    out, result = hr_run
    assert undocumented(out) == []
    for stem in STEMS:
        for suffix in ("_SR.png", "_LR.png"):
            assert cv2.imread(str(out / (stem + suffix))).shape == (128, 128, 3)
    assert cv2.imread(str(out / "comparison.png")) is not None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 8 and summary["skipped"] == 0 and summary["mode"] == "hr"
    assert summary["images_per_s"] > 0 and summary["device"].startswith(("CPU", "GPU"))
    assert not any(k in summary for k in PAPER_KEYS)  # switched off
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == BASE_COLUMNS and sorted(r[0] for r in rows[1:]) == STEMS
    means = np.mean([[float(v) for v in r[1:]] for r in rows[1:]], axis=0)
    assert summary["psnr"] == pytest.approx(means[0], abs=1e-5)
    assert f"8 images -> {out}" in result.stdout and "PSNR" in result.stdout


@pytest.mark.slow
def test_sr_images_match_an_independent_computation(hr_run, generator):
    out, _ = hr_run
    hrs = [released_hr(os.path.join(TEST_IMAGES, s + ".jpg")) for s in STEMS]
    lrs = [released_lr(hr) for hr in hrs]
    expected = super_resolve(generator, lrs)
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    for stem, hr, lr, sr in zip(STEMS, hrs, lrs, expected):
        written = read_rgb(out / (stem + "_SR.png"))
        assert_close_images(written, sr)
        assert sr.std() > 5  # the random generator does not give a flat image
        bicubic = read_rgb(out / (stem + "_LR.png"))
        np.testing.assert_array_equal(bicubic, cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
        assert float(rows[stem]["psnr"]) == pytest.approx(peak_signal_noise_ratio(hr, written, data_range=255),
                                                          abs=1e-5)
        assert float(rows[stem]["bicubic_psnr"]) == pytest.approx(
            peak_signal_noise_ratio(hr, bicubic, data_range=255), abs=1e-5)


@pytest.mark.slow
def test_batches_and_a_second_run_beside_the_first(hr_run, generator, tmp_path):
    """--batchSize 3 into a folder that holds results; missing eval dependencies are one informational line."""
    out, _ = hr_run
    before = {p: p.read_bytes() for p in out.iterdir() if p.is_file()}
    fake = tmp_path / "fake_site"
    fake.mkdir()
    for module in ("dlib", "brisque"):
        (fake / f"{module}.py").write_text(f"raise ImportError('No module named {module}')\n")
    env = dict(os.environ, PYTHONPATH=str(fake))
    result = run_test_py("--weight_path", generator.weights_folder / "generator.weights.h5",
                         "--test_path", TEST_IMAGES, "--image_save_path", out, "--batchSize", 3,
                         "--no_vif", "--id_weights", tmp_path / "absent.weights.h5", "--num_figures", 0, env=env)
    assert result.returncode == 0, result.stderr
    assert "test.py: warning:" not in result.stderr
    infos = [line for line in result.stderr.splitlines() if line.startswith("test.py: info:")]
    assert len(infos) == 1, result.stderr
    for part in ("FR-PSNR/FR-SSIM, TAR algorithm, BRISQUE", "requirements-eval.txt", "absent.weights.h5",
                 "scripts.get_facenet_weights", "--no_brisque"):
        assert part in infos[0], part
    run2 = out / "run_2"
    assert str(run2) in result.stdout and "--overwrite" in result.stdout
    assert {p: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # first run untouched
    for stem in STEMS:
        assert_close_images(read_rgb(run2 / (stem + "_SR.png")), read_rgb(out / (stem + "_SR.png")))
    assert not (run2 / "comparison.png").exists()
    summary = json.loads((run2 / "summary.json").read_text())
    assert summary["images"] == 8 and not any(k in summary for k in PAPER_KEYS + ["brisque", "rank1"])


@pytest.mark.slow
def test_lr_input(generator, tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "lr"
    src.mkdir()
    faces = {f"face{i}": rng.integers(0, 256, (16, 16, 3)).astype(np.uint8) for i in range(3)}
    faces["odd"] = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    for stem, image in faces.items():
        cv2.imwrite(str(src / (stem + ".png")), image[:, :, ::-1])
    out = tmp_path / "out"  # absolute
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", src, "--lr_input",
                         "--image_save_path", out, "--num_figures", 0, *NO_HEAVY)
    assert result.returncode == 0, result.stderr
    # 20x24 -> centred 20x20 -> 16x16 by area averaging (a shrink)
    lrs = {**faces, "odd": cv2.resize(faces["odd"][:, 2:22], (16, 16), interpolation=cv2.INTER_AREA)}
    expected = super_resolve(generator, list(lrs.values()))
    for stem, sr in zip(lrs, expected):
        assert_close_images(read_rgb(out / (stem + "_SR.png")), sr)
        np.testing.assert_array_equal(read_rgb(out / (stem + "_LR.png")),
                                      cv2.resize(lrs[stem], (128, 128), interpolation=cv2.INTER_CUBIC))
    assert not (out / "metrics.csv").exists() and undocumented(out) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "lr_input" and summary["images"] == 4 and "psnr" not in summary
    assert summary["raw_output"] is False


@pytest.mark.slow
def test_help_lists_every_flag():
    result = subprocess.run([sys.executable, "test.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    base = ["save_path", "gpu_ids", "checkpoint_path", "train_path", "test_path", "batchSize", "load_size",
            "crop_size", "output_nc", "dataset_mode"]
    test = ["weight_path", "image_save_path", "overwrite", "lr_input", "num_figures", "no_fr", "no_vif",
            "no_tar_algo", "no_tar_net", "id_weights", "no_brisque", "degradation", "blur_sigma", "noise_sigma",
            "jpeg_quality", "identities"]
    for flag in base + test:
        assert f"--{flag}" in result.stdout, flag


def test_optional_metrics_that_cannot_run_are_one_informational_line(monkeypatch, capsys, tmp_path):
    from evaluation import setup
    from metrics.face import EvalDependencyError
    from options.test_options import TestOptions

    class NoDlib:
        def check(self, descriptors=False):
            raise EvalDependencyError("dlib is not installed: pip install -r requirements-eval.txt")

    def no_brisque():
        raise EvalDependencyError("brisque is not installed: pip install -r requirements-eval.txt")

    monkeypatch.setattr(setup, "FaceTools", NoDlib)
    monkeypatch.setattr(setup.brisque, "load_model", no_brisque)
    absent = tmp_path / "facenet.h5"
    opt = TestOptions().parse(["--gpu_ids", "-1", "--test_path", TEST_IMAGES, "--id_weights", str(absent)])
    off = {}
    evaluator = setup.face_metrics_for(opt, off)
    assert (evaluator.fr, evaluator.vif, evaluator.tar_algo, evaluator.tar_net) == (False, True, False, False)
    assert setup.brisque_on(opt, off) is False
    assert capsys.readouterr().err == ""  # nothing printed on the way: one line, by main
    assert setup.optional_off_line(off) == (
        "test.py: info: optional metrics off: FR-PSNR/FR-SSIM, TAR algorithm, BRISQUE (install: pip install -r "
        f"requirements-eval.txt); TAR network (FaceNet weights file not found: {absent}: run `python -m "
        "scripts.get_facenet_weights` or pass --id_weights PATH). The --no_fr, --no_tar_algo, --no_tar_net and "
        "--no_brisque flags silence this line")
    assert setup.optional_off_line({}) is None


def test_tar_network_is_in_summary_json_not_the_printed_line():
    from evaluation.summary import summary_line

    summary = {"psnr": 23.0, "bicubic_psnr": 21.1, "tar_algo_0.6": 25.0, "bicubic_tar_algo_0.6": 12.5,
               "tar_net_0.04": 0.0, "bicubic_tar_net_0.04": 0.0}
    line = summary_line(8, "out", summary, False, 0)
    assert line == "8 images -> out | PSNR 23.00 dB (bicubic 21.10 dB) | TAR algorithm@0.6 25.0% (bicubic 12.5%)"
