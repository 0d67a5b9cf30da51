"""test.py on hostile input: broken and odd images, bad options, bad checkpoints, output names.

The corpus is made here at test time. One subprocess runs test.py on all of
it; the other cases call test.py's main(argv) in-process (same code path, no
interpreter start-up), except option errors, which need no TensorFlow.
"""
import importlib.util
import io
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from conftest import ROOT
from data.images import read_image
from models import build_generator, save_generator
from utils import output_stems

FACE = os.path.join(ROOT, "datasets", "test", "002993.jpg")
NO_HEAVY = ["--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net"]

try:
    from PIL import Image
except ImportError:
    Image = None


def load_script():
    spec = importlib.util.spec_from_file_location("eipnet_test_script", os.path.join(ROOT, "test.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path, image, ext=None):
    """Encode an RGB / RGBA / grey array with OpenCV and write the bytes (any unicode name works)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(ext or os.path.splitext(str(path))[1].lower(), image)
    assert ok
    path.write_bytes(data.tobytes())


def face_rgb():
    return cv2.cvtColor(cv2.imread(FACE), cv2.COLOR_BGR2RGB)


def build_corpus(root):
    """Write the corpus; returns (readable {relative name: expected RGB}, unreadable {name: reason})."""
    rng = np.random.default_rng(0)
    face = face_rgb()
    ok, bad = {}, {}

    def add(name, rgb, ext=None):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, rgb, ext)
        ok[name] = cv2.cvtColor(cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR),
                                cv2.COLOR_BGR2RGB)

    add("good.jpg", face)
    rgba = np.dstack([face, rng.integers(0, 256, face.shape[:2]).astype(np.uint8)])
    write(root / "alpha.png", rgba)
    ok["alpha.png"] = face
    levels = rng.integers(0, 256, face.shape).astype(np.int64)
    deep = np.clip(levels * 257 + rng.integers(-120, 121, face.shape), 0, 65535).astype(np.uint16)
    write(root / "deep.png", deep)
    ok["deep.png"] = levels.astype(np.uint8)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    write(root / "gray.png", gray)
    ok["gray.png"] = np.repeat(gray[:, :, None], 3, axis=2)
    add("tiny.png", np.array([[[10, 200, 90]]], np.uint8))
    add("small.png", rng.integers(0, 256, (10, 10, 3)).astype(np.uint8))
    ramp = np.linspace(0, 255, 6000)[None, :, None] * np.linspace(0.2, 1, 4000)[:, None, None]
    add("huge.jpg", np.repeat(ramp, 3, axis=2).astype(np.uint8))
    add("wide.png", face[:40, :100])
    add("tall.jpg", face[:90, :30])
    add("UPPER.JPG", face[::-1])
    add("Mixed.PnG", face[:, ::-1])
    add("名前 with space.png", face[50:150, 20:120])
    add("sub/inner.png", face[10:120, 10:120])
    add("..jpg", face, ".jpg")  # no extension for splitext: a leading dot
    add("a\\..\\..\\escape.png", face)  # a backslash is an ordinary character on POSIX
    add("x.jpg", face)
    add("x.JPG", face[::-1])
    (root / "empty_sub").mkdir()
    os.symlink(root, root / "loop")
    os.symlink(root / "self.jpg", root / "self.jpg")
    bad["self.jpg"] = "cannot open"
    data = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[:len(data) * 6 // 10])
    bad["truncated.jpg"] = "not a decodable image"
    (root / "empty.jpg").write_bytes(b"")
    bad["empty.jpg"] = "empty file"
    (root / "notes.jpg").write_text("these are not pixels\n")
    bad["notes.jpg"] = "not a decodable image"
    if Image is not None:
        buffer = io.BytesIO()
        Image.fromarray(face).convert("CMYK").save(buffer, "JPEG", quality=95)
        (root / "cmyk.jpg").write_bytes(buffer.getvalue())
        ok["cmyk.jpg"] = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        pil = Image.fromarray(face)
        exif = pil.getexif()
        exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise to display
        pil.save(root / "rotated.jpg", "JPEG", quality=95, exif=exif.tobytes())
        ok["rotated.jpg"] = np.rot90(np.asarray(Image.open(root / "rotated.jpg").convert("RGB")), -1)
    return ok, bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    ok, bad = build_corpus(root)
    return root, ok, bad


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    keras.utils.set_random_seed(11)
    path = tmp_path_factory.mktemp("weights") / "generator.weights.h5"
    save_generator(build_generator(), str(path))
    return path


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture
def main(script, monkeypatch, capsys):
    """test.py's main(argv) on the CPU; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # restored afterwards, though test.py sets it

    def run(*args):
        try:
            script.main(["--gpu_ids", "-1", *map(str, args)])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def error_lines(stderr):
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("test.py: error:")]


def test_read_image_decodes_the_corpus(corpus):
    root, ok, bad = corpus
    for name, expected in ok.items():
        got = read_image(str(root / name))
        assert got.dtype == np.uint8 and got.shape == expected.shape, name
        if name == "cmyk.jpg":  # two JPEG decoders: colours agree to rounding
            assert np.abs(got.astype(int) - expected).mean() < 2
        elif name == "rotated.jpg":
            assert np.abs(got.astype(int) - expected).mean() < 1
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    if Image is None:
        pytest.skip("Pillow not installed: no CMYK or EXIF-rotated JPEG in the corpus")


@pytest.mark.slow
def test_corpus_run(corpus, weights, tmp_path):
    root, ok, bad = corpus
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--test_path", str(root),
                             "--weight_path", str(weights), "--image_save_path", str(out), "--num_figures", "1",
                             *NO_HEAVY], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name, reason in bad.items():
        reports = [line for line in result.stderr.splitlines() if str(root / name) in line]
        assert len(reports) == 1 and reports[0].startswith(f"test.py: skipped {root / name}: {reason}"), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(ok) and summary["skipped"] == len(bad)
    assert f"skipped {len(bad)}" in result.stdout

    special = {"..jpg": "..jpg", "a\\..\\..\\escape.png": "a/escape", "sub/inner.png": "sub/inner",
               "x.JPG": "x_JPG", "x.jpg": "x_jpg_2"}  # inputs are sorted: upper case first
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*_SR.png"))
    expected = sorted(special.get(n, os.path.splitext(n)[0]) + "_SR.png" for n in ok)
    assert written == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing escaped the output folder
    for path in out.rglob("*"):
        assert os.path.realpath(path).startswith(str(out.resolve()) + os.sep)

    for stem in (os.path.splitext(n)[0] for n in ok if n not in special):
        assert cv2.imread(str(out / (stem + "_SR.png"))).shape == (128, 128, 3)
    # A 1x1 image is a valid one: its HR is that colour everywhere, so are its LR and bicubic images.
    bicubic = cv2.imread(str(out / "tiny_LR.png"))[:, :, ::-1]
    assert (bicubic == [10, 200, 90]).all()
    metrics = (out / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert len(metrics) == 1 + len(ok) and any(line.startswith("名前 with space,") for line in metrics)


@pytest.mark.slow
def test_nothing_readable_is_an_error(tmp_path, weights, main):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "sub").mkdir()
    code, _, err = main("--test_path", tmp_path / "empty", "--weight_path", weights, *NO_HEAVY)
    assert code == 1 and len(error_lines(err)) == 1 and "no images" in err

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"")
    (bad / "b.png").write_text("text")
    (bad / "readme.txt").write_text("not an image at all")
    out = tmp_path / "out"
    code, _, err = main("--test_path", bad, "--weight_path", weights, "--image_save_path", out, *NO_HEAVY)
    errors = error_lines(err)
    assert code == 1 and len(errors) == 1 and "none of the 2 images" in errors[0]
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--batchSize", "0"], "--batchSize must be at least 1"),
    (["--crop_size", "100"], "--crop_size must be a positive multiple of 8"),
    (["--crop_size", "8"], "--crop_size must be at least 16"),
    (["--dataset_mode", "faces"], "invalid choice: 'faces'"),
    (["--test_path", "no/such/folder"], "--test_path no/such/folder is not a folder"),
    (["--num_figures", "-1"], "--num_figures must be >= 0"),
])
@pytest.mark.slow
def test_invalid_options(args, message):
    result = subprocess.run([sys.executable, "test.py", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and message in errors[0] and errors[0] == result.stderr.splitlines()[-1]


@pytest.mark.slow
def test_bad_checkpoints_name_the_file(tmp_path, weights, main):
    truncated = tmp_path / "truncated" / "generator.weights.h5"
    truncated.parent.mkdir()
    truncated.write_bytes(weights.read_bytes()[:100_000])
    mismatched = tmp_path / "mismatched" / "generator.weights.h5"
    mismatched.parent.mkdir()
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(str(mismatched))
    (tmp_path / "empty").mkdir()
    # a path where nothing is is refused with the options (tests/test_entry_points.py)
    cases = [(tmp_path / "empty", "no checkpoint found in"),
             (truncated.parent, "cannot read checkpoint"), (mismatched, "does not fit")]
    for path, phrase in cases:
        out = tmp_path / "out"
        code, _, err = main("--weight_path", path, "--test_path", os.path.dirname(FACE),
                            "--image_save_path", out, *NO_HEAVY)
        errors = error_lines(err)
        assert code == 1 and errors == err.splitlines()[-1:], path
        assert phrase in errors[0] and str(path if path != truncated.parent else truncated) in errors[0]
        assert not out.exists()  # nothing written before the weights load


@pytest.mark.slow
def test_results_are_not_overwritten_unless_asked(tmp_path, weights, main):
    src = tmp_path / "faces"
    src.mkdir()
    write(src / "face.png", face_rgb()[20:148, 10:138])
    out = tmp_path / "out"
    common = ["--test_path", src, "--weight_path", weights, "--image_save_path", out, "--num_figures", 0, *NO_HEAVY]
    assert main(*common)[0] == 0
    first = (out / "face_SR.png").read_bytes()
    (out / "summary.json").unlink()  # an _SR.png alone also marks earlier results
    code, stdout, _ = main(*common)
    assert code == 0 and (out / "run_2" / "face_SR.png").exists() and str(out / "run_2") in stdout
    code, stdout, _ = main(*common)
    assert code == 0 and (out / "run_3" / "summary.json").exists() and str(out / "run_3") in stdout
    # a folder of results inside --test_path is not read back as input
    code, stdout, _ = main("--test_path", tmp_path, "--weight_path", weights, "--image_save_path", out,
                           "--overwrite", "--num_figures", 0, *NO_HEAVY)
    assert code == 0 and json.loads((out / "summary.json").read_text())["images"] == 1
    assert not (out / "run_4").exists() and f"-> {out} " in stdout and "--overwrite" not in stdout
    assert (out / "faces" / "face_SR.png").read_bytes() == first


def test_output_stems_stay_inside_and_unique():
    root = os.path.join(os.sep, "data", "in")
    names = ["a.jpg", "a.png", "a_jpg.png", "x.jpg", "X.JPG", "..jpg", "sub/..png", "p\\..\\..\\q.png",
             "sub/b.png", "SUB/b.png"]
    stems = output_stems([os.path.join(root, n) for n in names], root)
    assert stems == ["a_jpg", "a_png", "a_jpg_2", "x_jpg", "X_JPG_2", "..jpg", os.path.join("sub", "..png"),
                     os.path.join("p", "q"), os.path.join("sub", "b_png"), os.path.join("SUB", "b_png_2")]
    for stem in stems + output_stems([os.path.join(os.sep, "elsewhere", "e.png"), root], root):
        out = os.path.normpath(os.path.join(os.sep, "out", stem + "_SR.png"))
        assert out.startswith(os.sep + "out" + os.sep) and stem


def test_symlinked_folders_are_listed_once(tmp_path):
    from data.images import list_images

    real = tmp_path / "real" / "anna"
    real.mkdir(parents=True)
    cv2.imwrite(str(real / "a.png"), np.zeros((8, 8, 3), np.uint8))
    root = tmp_path / "faces"
    root.mkdir()
    os.symlink(real, root / "anna")          # a dataset of links, as users make them
    os.symlink(real, root / "anna_again")    # the same folder twice: its files once
    os.symlink(root, root / "loop")
    assert list_images(str(root)) == [str(root / "anna" / "a.png")]
