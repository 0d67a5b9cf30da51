"""Suite-wide: no test may reach beyond this machine, nor try a download.

Every Python process of the suite (this one and each subprocess, whatever env it is given)
loads tests/netguard/sitecustomize.py, which refuses and records any outside connection or
name lookup; a test during which one was attempted fails, naming it. EIPNET_NO_DOWNLOAD=1
stops keras-facenet's download of FaceNet weights (models/identity.py honours it).
"""
import importlib.util
import os
import subprocess
import tempfile

import pytest

# the repository: tests run the entry points from here
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netguard")
LOG = os.path.join(tempfile.mkdtemp(prefix="eipnet-network-"), "attempts.txt")
GUARD_ENV = {"EIPNET_NO_DOWNLOAD": "1", "EIPNET_TEST_NETWORK_LOG": LOG}


def guarded_env(env):
    """`env` with the guard's variables and its folder first on PYTHONPATH."""
    env = dict(env, **GUARD_ENV)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != GUARD]
    env["PYTHONPATH"] = os.pathsep.join([GUARD] + paths)
    return env


os.environ.update(guarded_env(os.environ))
_spec = importlib.util.spec_from_file_location("eipnet_netguard", os.path.join(GUARD, "sitecustomize.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))  # installs the guard in this process
_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self, *args, env=None, **kwargs):
    # a test that passes its own env (say PYTHONPATH=a fake module) keeps the guard all the same
    _popen_init(self, *args, env=None if env is None else guarded_env(env), **kwargs)


subprocess.Popen.__init__ = _guarded_popen_init


def network_attempts():
    """Attempts recorded since the last call (and forgets them)."""
    if not os.path.exists(LOG):
        return []
    with open(LOG, encoding="utf-8") as f:
        lines = f.read().splitlines()
    os.remove(LOG)
    return lines


@pytest.fixture(autouse=True)
def no_outside_connection():
    network_attempts()
    yield
    attempts = network_attempts()
    if attempts:
        pytest.fail("attempted a connection beyond this machine: " + "; ".join(attempts[:3]))


@pytest.fixture
def random_weights(tmp_path):
    """Path of a freshly initialised generator's weights (seed 0): a model test.py loads in seconds."""
    import keras

    from models import build_generator, save_generator

    keras.utils.set_random_seed(0)
    path = tmp_path / "g.weights.h5"
    save_generator(build_generator(16, 3), str(path))
    return path


@pytest.fixture
def dlib_models():
    """Skip the test unless dlib and its model files are installed (requirements-eval.txt)."""
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install -r requirements-eval.txt)")
    from metrics.face import EvalDependencyError, models_dir

    try:
        return models_dir()
    except EvalDependencyError as err:
        pytest.skip(str(err))
