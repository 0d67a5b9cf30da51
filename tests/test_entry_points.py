"""What the entry points do before TensorFlow loads: refusals that need no TensorFlow come first,
and --help states each default once.

Each entry point runs as `python train.py ...` would, in a fresh interpreter, which reports at exit
whether TensorFlow was imported: these runs take about a second, not TensorFlow's start-up.
"""
import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

ENTRY_POINTS = ("train.py", "test.py", "demo.py")
AT_EXIT = ("import atexit, runpy, sys\n"
           "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))\n"
           "sys.argv = {argv!r}\n"
           "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def run(*argv):
    """(exit code, stdout, stderr) of `python *argv` from the repository root; stdout ends with whether
    TensorFlow was imported."""
    result = subprocess.run([sys.executable, "-c", AT_EXIT.format(argv=[str(a) for a in argv])], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr


def test_train_py_refuses_an_existing_run_before_tensorflow(tmp_path):
    run_folder = tmp_path / "experiment"
    run_folder.mkdir()
    (run_folder / "loss_log.txt").write_text("(epoch: 1, iters: 1) G_total: 1\n")
    code, out, err = run("train.py", "--checkpoint_path", tmp_path, "--gpu_ids", "-1")
    assert code == 1 and out.splitlines() == ["tensorflow imported: False"], (out, err)
    assert err.splitlines() == [f"train.py: error: {run_folder} already holds a run (loss_log.txt): resume it with "
                                "--continue_train, train into a new --save_path, or replace it with --overwrite"]
    assert (run_folder / "loss_log.txt").read_text() == "(epoch: 1, iters: 1) G_total: 1\n"


def test_train_py_refuses_a_missing_train_path_before_tensorflow(tmp_path):
    code, out, err = run("train.py", "--checkpoint_path", tmp_path, "--train_path", tmp_path / "absent")
    assert code == 2 and out.splitlines() == ["tensorflow imported: False"], (out, err)
    assert err.splitlines()[-1] == f"train.py: error: --train_path {tmp_path / 'absent'} is not a folder"


@pytest.mark.parametrize("script", ["test.py", "demo.py"])
def test_a_missing_weight_path_is_refused_before_tensorflow(tmp_path, script):
    missing = tmp_path / "missing.weights.h5"
    code, out, err = run(script, "--weight_path", missing)
    assert code == 2 and out.splitlines() == ["tensorflow imported: False"], (out, err)
    last = err.splitlines()[-1]
    assert last.startswith(f"{script}: error: no checkpoint at --weight_path {missing}; train one"), last


def test_a_tf1_prefix_passes_the_early_check(tmp_path):
    """The authors' G_weight.ckpt is a prefix of files, not a file: its .index is what exists."""
    from options.test_options import weights_exist

    (tmp_path / "G_weight.ckpt.index").write_bytes(b"")
    assert weights_exist(str(tmp_path / "G_weight.ckpt"))
    assert weights_exist(str(tmp_path))
    assert not weights_exist(str(tmp_path / "other.ckpt"))


def option_helps(text):
    """{option: its help paragraph} of an argparse --help text."""
    helps = {}
    for block in re.split(r"\n(?=  -)", text.split("options:", 1)[1]):
        words = block.split()
        if words and words[0].startswith("-"):
            helps[words[0].rstrip(",")] = " ".join(words)
    return helps


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_help_states_each_default_once(script):
    code, out, err = run(script, "--help")
    assert code == 0, err
    helps = option_helps(out)
    assert len(helps) > 3, out
    repeated = {option: text for option, text in helps.items()
                if len(re.findall(r"\(default|default:|by default", text, re.IGNORECASE)) > 1}
    assert repeated == {}
    # a value that means "not given" is not printed as a default: the help says what happens without it
    assert [text for text in helps.values() if "(default: None)" in text or "(default: False)" in text] == []
    assert "tensorflow imported: False" in out


SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "scripts", "*.py")))
IMPORTABLE = ENTRY_POINTS + tuple(os.path.relpath(p, ROOT) for p in SCRIPTS if not p.endswith("__init__.py"))
# OpenCV, which the helpers use, sets LD_LIBRARY_PATH when imported: imported first, as the helpers would
IMPORT_ALL = ("import importlib.util, json, os, sys\n"
              "import cv2\n"
              "before = dict(os.environ)\n"
              "mains = {{}}\n"
              "for path in {paths!r}:\n"
              "    spec = importlib.util.spec_from_file_location('entry_' + os.path.basename(path)[:-3], path)\n"
              "    module = importlib.util.module_from_spec(spec)\n"
              "    spec.loader.exec_module(module)\n"
              "    mains[path] = callable(getattr(module, 'main', None))\n"
              "heavy = sorted(m for m in ('tensorflow', 'keras', 'gradio') if m in sys.modules)\n"
              "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
              "print(json.dumps({{'mains': mains, 'heavy': heavy, 'env': changed}}))\n")


def test_importing_an_entry_point_runs_nothing():
    """An entry point is a main(argv): importing it loads no TensorFlow or Gradio and sets no variable."""
    import json

    result = subprocess.run([sys.executable, "-c", IMPORT_ALL.format(paths=list(IMPORTABLE))], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert len(IMPORTABLE) > 10  # the three entry points and every script
    assert report == {"mains": {path: True for path in IMPORTABLE}, "heavy": [], "env": []}
