"""test.py --int8 (deploy.int8): export on first use, a cache keyed by content, the VNNI warning.

Small and fast: a random generator at LR 4x4 (HR 32x32), TFLite batch 2.
"""
import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from conftest import ROOT
from deploy import int8
from deploy.export import ExportError
from metrics.quality import psnr
from models import build_generator, save_generator
from utils import to_uint8

TEST_IMAGES = os.path.join(ROOT, "datasets", "test")
LR = 4


def _generator(seed):
    keras.utils.set_random_seed(seed)
    g = build_generator(LR)
    g.rgb.kernel.assign(g.rgb.kernel * 15.0)  # output spread over [0, 255], so quantisation error shows
    g.rgb.bias.assign([128.0, 128.0, 128.0])
    return g


def _lr_faces():
    from data.degradation import degrade
    from data.images import list_images, prepare_hr, read_image

    hr = np.stack([prepare_hr(read_image(p), 8 * LR, 8 * LR) for p in list_images(TEST_IMAGES)])
    return hr, degrade(hr).numpy().astype(np.float32)


def test_vnni_is_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n\nprocessor\t: 1\n")
    assert int8.lacks_vnni(str(cpuinfo))
    for flag in int8.VNNI_FLAGS:
        cpuinfo.write_text(f"flags\t\t: fpu avx2 {flag} bmi2\n")
        assert not int8.lacks_vnni(str(cpuinfo)), flag
    assert not int8.lacks_vnni(str(tmp_path / "absent"))  # unknown: no warning without evidence


@pytest.mark.slow
def test_export_once_cache_by_content_never_stale(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "weights"
    folder.mkdir()
    weights = folder / "generator.weights.h5"
    save_generator(_generator(1), str(weights))
    before = sorted(os.listdir(folder))
    hr, lr = _lr_faces()

    log = []
    first = int8.int8_inference(str(folder), LR, 2, log=log.append)
    assert first.precision == "int8" and first.batch_size == 2 and "exporting" in log[-1]
    cached = [p for p in os.listdir(int8.cache_dir()) if p.endswith(".tflite")]
    assert len(cached) == 1 and sorted(os.listdir(folder)) == before  # nothing written beside the weights
    sr_first = first.predict(lr)[0]
    keras_sr = _generator(1)(lr)[0].numpy()
    agreement = np.mean([psnr(to_uint8(a), to_uint8(b)) for a, b in zip(sr_first, keras_sr)])
    assert agreement > 30, f"int8 vs fp32 {agreement:.1f} dB"

    again = int8.int8_inference(str(weights), LR, 2, log=log.append)  # the file itself: same bytes, same model
    assert "(cached)" in log[-1] and os.listdir(int8.cache_dir()) == cached
    np.testing.assert_array_equal(again.predict(lr)[0], sr_first)

    save_generator(_generator(2), str(weights))  # new weights under the same name
    changed = int8.int8_inference(str(folder), LR, 2, log=log.append)
    assert "exporting" in log[-1] and len(os.listdir(int8.cache_dir())) == 2
    sr_changed = changed.predict(lr)[0]
    keras_changed = _generator(2)(lr)[0].numpy()
    assert np.abs(sr_changed - keras_changed).mean() < 0.25 * np.abs(sr_first - keras_changed).mean()

    files = int8.weight_files(str(folder))
    keys = {int8.cache_key(files, [], lr, batch) for lr, batch in ((LR, 2), (LR, 3), (LR + 1, 2))}
    assert len(keys) == 3  # the fixed batch and LR size are part of the model

    with pytest.raises(ExportError, match="exported model already"):
        int8.int8_inference(os.path.join(int8.cache_dir(), cached[0]), LR, 2)

    # test.py's place that builds the generator (the --real_world branch uses it too): the cached int8
    # model, and the warning where the CPU has no VNNI
    from evaluation import setup
    from options.test_options import TestOptions

    opt = TestOptions().parse(["--int8", "--weight_path", str(folder), "--crop_size", str(8 * LR), "--load_size",
                               str(8 * LR), "--batchSize", "2", "--gpu_ids", "-1", "--test_path", TEST_IMAGES])
    monkeypatch.setattr(setup, "lacks_vnni", lambda: True)
    model = setup.load_model(opt)
    assert model.precision == "int8" and model.batch_size == 2
    np.testing.assert_array_equal(model.predict(lr)[0], sr_changed)
    err = capsys.readouterr().err
    assert "test.py: warning: this CPU has no VNNI" in err and "(cached)" in err
    monkeypatch.setattr(setup, "lacks_vnni", lambda: False)
    setup.load_model(opt)
    assert "warning" not in capsys.readouterr().err


def run_test_py(*args, env=None):
    return subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_test_py_int8_end_to_end(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    save_generator(_generator(5), str(folder / "generator.weights.h5"))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = tmp_path / "out"
    common = ["--weight_path", folder, "--crop_size", 8 * LR, "--load_size", 8 * LR, "--batchSize", 2,
              "--raw_output", "--no_fr", "--no_tar_algo", "--no_tar_net", "--no_vif"]
    result = run_test_py(*common, "--int8", "--image_save_path", out, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "int8 model: exporting" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "tflite" and summary["precision"] == "int8" and summary["images"] == 8
    assert cv2.imread(str(out / "comparison.png")) is not None  # drawn without the edge maps TFLite lacks
    _, lr = _lr_faces()
    keras_sr = to_uint8(_generator(5)(lr)[0].numpy())
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(TEST_IMAGES))
    sr = [cv2.imread(str(out / f"{s}_SR.png"))[:, :, ::-1] for s in stems]
    assert np.mean([psnr(a, b) for a, b in zip(sr, keras_sr)]) > 30

    second = run_test_py(*common, "--int8", "--image_save_path", tmp_path / "out2", env=env)
    assert second.returncode == 0 and "(cached)" in second.stderr and "exporting" not in second.stderr

    refused = run_test_py(*common, "--int8", "--mixed_precision", "--image_save_path", tmp_path / "x", env=env)
    assert refused.returncode != 0 and "exclude each other" in refused.stderr.strip().splitlines()[-1]
