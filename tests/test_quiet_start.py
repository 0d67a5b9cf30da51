"""No TensorFlow C++ start-up noise before our own output; our own lines stay.

On a machine without a GPU, importing TensorFlow prints absl's "All log messages before
absl::InitializeLog()" notice, "Could not find cuda drivers" and "failed call to cuInit: ... (303)"
lines, which users read as a failure. utils.start_tensorflow filters exactly those.
"""
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from utils import startup_lines_kept

# absl/glog's C++ line format ("I0000 00:00:1796206112.371465   14365 cudart_stub.cc:31] ...")
CPP_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")
ABSL_NOTICE = "All log messages before absl::InitializeLog()"

# What TensorFlow 2.21 prints at start-up here (2-core CPU, no GPU), verbatim
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796206112.371465   14365 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "E0000 00:00:1796206127.959580   14365 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0423 12:34:56.789012    4242 some_file.cc:7] a warning once absl is initialised",
]
# printed once per process at the first uint8 transpose, on this machine's AVX-512 CPU too (2026-12-07)
ONEDNN_UINT8 = ("E0000 00:00:1796621266.965637    5188 util.cc:131] oneDNN supports DT_UINT8 only on platforms "
                "with AVX-512. Falling back to the default Eigen-based implementation if present.")
KEPT = [
    "our own line, printed while TensorFlow loads",
    "E0000 00:00:1796206127.959580   14365 some_op.cc:9] a real error is not start-up noise",
]


def test_filter_drops_the_noise_and_keeps_other_lines():
    text = "\n".join([NOISE[0], KEPT[0], *NOISE[1:], ONEDNN_UINT8, KEPT[1]]) + "\n"
    assert startup_lines_kept(text) == KEPT
    assert startup_lines_kept("") == []


FAKE_TENSORFLOW = '''
import os

for line in {lines!r}:
    os.write(2, (line + "\\n").encode())


class config:
    @staticmethod
    def list_physical_devices(kind):
        os.write(2, b"I0000 00:00:1796206127.959580   14365 cuda_platform.cc:52] probing for a GPU\\n")
        return []


uint8 = "uint8"
_onednn_told = []


def zeros(shape, dtype):
    return shape, dtype


def transpose(x):
    if x[1] == uint8 and not _onednn_told:  # as TensorFlow: once per process
        _onednn_told.append(True)
        os.write(2, ({onednn!r} + "\\n").encode())
    return x
'''


def test_start_tensorflow_passes_on_what_is_not_noise(tmp_path):
    """A stand-in `tensorflow` that prints, on file descriptor 2 as the C++ side does, the noise and
    a line of ours: only ours comes out, and stdout is left alone. oneDNN's uint8 notice, printed at
    the first uint8 transpose, comes while it is filtered, not in the middle of training."""
    (tmp_path / "tensorflow.py").write_text(FAKE_TENSORFLOW.format(lines=[NOISE[0], KEPT[0], *NOISE[1:], KEPT[1]],
                                                                    onednn=ONEDNN_UINT8))
    code = ("from utils import silence_onednn_uint8_notice, start_tensorflow\n"
            "tf = start_tensorflow()\n"
            "print('stdout after start-up', tf.__name__)\n"
            "assert not tf._onednn_told  # no op at start: a multi-worker strategy must come first\n"
            "silence_onednn_uint8_notice(tf)\n"
            "tf.transpose(tf.zeros((2, 2), tf.uint8))  # the training pipeline's first flip prints nothing\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == KEPT
    assert result.stdout == "stdout after start-up tensorflow\n"


@pytest.mark.slow
def test_test_py_prints_no_tensorflow_noise(tmp_path, random_weights):
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        assert cv2.imwrite(str(faces / f"{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (faces / "broken.jpg").write_bytes(b"not a jpeg")
    identities = tmp_path / "identities.txt"
    identities.write_text("0.png a\n1.png b\n")
    result = subprocess.run(
        [sys.executable, "test.py", "--gpu_ids", "-1", "--test_path", str(faces), "--weight_path", str(random_weights),
         "--image_save_path", str(tmp_path / "out"), "--num_figures", "0", "--workers", "2",
         "--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net", "--no_brisque", "--identities", str(identities)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert ABSL_NOTICE not in stream
        assert not [line for line in stream.splitlines() if CPP_LOG.match(line)], stream
    # our own lines are still there: a warning, a skipped file, the summary
    err = result.stderr.splitlines()
    assert any(line.startswith("test.py: warning: rank-1 identification off") for line in err), result.stderr
    assert any(line.startswith(f"test.py: skipped {faces / 'broken.jpg'}: ") for line in err), result.stderr
    assert result.stdout.startswith("2 images -> ")
