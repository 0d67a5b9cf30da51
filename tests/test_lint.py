"""The code's shape, checked: ruff clean, no oversized class or function, TensorFlow loaded only after the options.

ruff runs here so that the README's test command (and .ci/run, which calls it) fails on a lint error.
"""
import ast
import glob
import os
import subprocess
import sys

from conftest import ROOT

MAX_LINES = 150          # any class or function of product code
MAX_TRAIN_PY = 350       # train.py: options, strategy, signals and the loop


def product_files():
    files = glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True)
    return [f for f in files if os.path.relpath(f, ROOT).split(os.sep)[0] not in ("tests", "checkpoint", "datasets")]


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_class_or_function_over_the_limit():
    too_long = []
    for path in product_files():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    too_long.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, too_long
    with open(os.path.join(ROOT, "train.py"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= MAX_TRAIN_PY


def test_options_and_helpers_load_no_tensorflow():
    # --gpu_ids sets CUDA_VISIBLE_DEVICES while the options are parsed: TensorFlow must not be loaded by then
    code = ("import sys\n"
            "import data.constants, data.images, options.base_options, options.test_options, options.train_options\n"
            "import training.errors, training.run_folder, utils\n"
            "from options.test_options import TestOptions\n"
            "from options.train_options import TrainOptions\n"
            "TestOptions().parse([]); TrainOptions().parse([])\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"], result.stdout
