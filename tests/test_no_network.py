"""No test reaches beyond this machine: the guard of conftest.py works, and test.py's defaults try no download."""
import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, network_attempts

FACE = os.path.join(ROOT, "datasets", "test", sorted(os.listdir(os.path.join(ROOT, "datasets", "test")))[0])


def test_the_guard_refuses_outside_connections_and_records_them():
    with pytest.raises(OSError, match="no connection beyond this machine"):
        socket.create_connection(("example.org", 443), timeout=5)
    with pytest.raises(OSError, match="no connection beyond this machine"):
        socket.socket().connect(("93.184.215.14", 80))
    # a subprocess given its own environment is guarded all the same
    result = subprocess.run([sys.executable, "-c", "import urllib.request; urllib.request.urlopen("
                             "'https://github.com', timeout=5)"], capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode != 0 and "no connection beyond this machine" in result.stderr
    attempts = network_attempts()
    assert [a.split(" by ")[0] for a in attempts] == ["lookup example.org", "connect 93.184.215.14",
                                                      "lookup github.com"], attempts
    # loopback stays open
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname(), timeout=5).close()
    assert network_attempts() == []


@pytest.mark.slow
def test_test_py_defaults_try_no_facenet_download(tmp_path, random_weights):
    """Without FaceNet weights in ~/.keras-facenet, `python test.py` would ask keras-facenet to fetch them."""
    images = tmp_path / "faces"
    images.mkdir()
    os.symlink(FACE, images / os.path.basename(FACE))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--test_path", str(images),
                             "--weight_path", str(random_weights), "--image_save_path", str(out), "--num_figures", "0",
                             "--no_fr", "--no_vif", "--no_tar_algo"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, HOME=str(tmp_path / "home")))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "optional metrics off: TAR network (no FaceNet weights found" in result.stderr
    assert network_attempts() == []
