"""The code's shape, checked: ruff clean, no oversized class or function, TensorFlow loaded only after the options,
the detector only in faces/, no private name imported across modules, no issue number in comments.

ruff runs here so that the README's test command (and .ci/run, which calls it) fails on a lint error.
"""
import ast
import glob
import io
import os
import re
import subprocess
import sys
import tokenize

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


def all_python_files():
    """Product code and the tests."""
    return sorted(f for f in glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True)
                  if os.path.relpath(f, ROOT).split(os.sep)[0] not in ("checkpoint", "datasets"))


def parsed(path):
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def imported_modules(tree):
    """Every module an `import` or `from ... import` of `tree` names (a from-import's names as submodules too)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_no_module_under_data_loads_the_detector():
    """The real-photo path's MTCNN lives in faces/: the data code stays free of it."""
    loading = []
    for path in glob.glob(os.path.join(ROOT, "data", "**", "*.py"), recursive=True):
        for name in imported_modules(parsed(path)):
            if name.split(".")[0] == "mtcnn" or name in ("faces", "faces.detect") or name.startswith("faces.detect."):
                loading.append(f"{os.path.relpath(path, ROOT)}: {name}")
    assert not loading, loading


def is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def first_party_module(dotted):
    """Whether `dotted` names a module of this repository (a package, a .py file under ROOT or tests/)."""
    parts = dotted.split(".")
    for base in (ROOT, os.path.join(ROOT, "tests")):
        path = os.path.join(base, *parts)
        if os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py")):
            return True
    return False


def private_imports(tree):
    """Private names another module of ours is asked for: `from m import _x`, `import m._x`, `m._x` on an
    imported module of ours."""
    found, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif first_party_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(is_private(part) for part in alias.name.split(".")):
                    found.append(f"line {node.lineno}: import {alias.name}")
                elif first_party_module(alias.name):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and is_private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"line {node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


def test_no_private_name_is_imported_across_modules():
    """A name another module needs is public; a leading underscore means this module's own."""
    found = {os.path.relpath(path, ROOT): names for path in all_python_files()
             if (names := private_imports(parsed(path)))}
    assert found == {}


ISSUE = re.compile(r"\bissues? ?#?\d+", re.IGNORECASE)


def issue_citations(source):
    """Comments and docstrings of `source` that cite an issue number: the code says why, not which ticket."""
    cited = [f"line {tok.start[0]}: {tok.string.strip()}"
             for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT and ISSUE.search(tok.string)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc and ISSUE.search(doc):
                cited.append(f"line {getattr(node, 'lineno', 1)}: docstring: {ISSUE.search(doc).group(0)}")
    return cited


def test_no_comment_or_docstring_cites_an_issue_number():
    found = {}
    for path in all_python_files():
        with open(path, encoding="utf-8") as f:
            cited = issue_citations(f.read())
        if cited:
            found[os.path.relpath(path, ROOT)] = cited
    assert found == {}


def test_the_input_size_has_one_home():
    """The generator's 16 px input is data.constants.LR_SIZE: no signature or option spells it as a number."""
    spelled = []
    for path in product_files():
        for node in ast.walk(parsed(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args
                defaults = dict(zip([a.arg for a in args][len(args) - len(node.args.defaults):], node.args.defaults))
                defaults.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d})
                if isinstance(defaults.get("lr_size"), ast.Constant):
                    spelled.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name}")
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
                  and any(isinstance(a, ast.Constant) and a.value == "--lr_size" for a in node.args)
                  and any(k.arg == "default" and isinstance(k.value, ast.Constant) for k in node.keywords)):
                spelled.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} --lr_size")
    assert not spelled, spelled


def is_entry_point(module):
    return module in ("train", "test", "demo") or module == "scripts" or module.startswith("scripts.")


def test_no_library_module_imports_an_entry_point():
    """Entry points (train.py, test.py, demo.py, scripts/) parse, start TensorFlow and call the library; never
    the other way round."""
    found = []
    for path in product_files():
        rel = os.path.relpath(path, ROOT)
        if rel in ("train.py", "test.py", "demo.py") or rel.startswith("scripts" + os.sep):
            continue
        found += [f"{rel}: {name}" for name in imported_modules(parsed(path)) if is_entry_point(name)]
    assert not found, found


def entry_point_uses(tree):
    """What a test takes from the entry points it imports, other than their `main`."""
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and is_entry_point(node.module):
            for alias in node.names:
                if node.module == "scripts":   # from scripts import x [as y]: a module
                    aliases[alias.asname or alias.name] = f"scripts.{alias.name}"
                elif alias.name != "main":
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if is_entry_point(alias.name):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in aliases:
            parent = getattr(node, "parent", None)
            if not (isinstance(parent, ast.Attribute) and parent.attr == "main"):
                found.append(f"line {node.lineno}: {aliases[node.id]} used other than for its main")
    return found


def test_a_test_imports_an_entry_point_only_to_call_its_main():
    found = {}
    for path in glob.glob(os.path.join(ROOT, "tests", "*.py")):
        tree = parsed(path)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node
        if uses := entry_point_uses(tree):
            found[os.path.relpath(path, ROOT)] = uses
    assert found == {}
