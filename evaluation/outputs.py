"""Where test.py reads and writes: its inputs, and an output folder that never overwrites earlier results."""
import os

from data.images import IMAGE_EXTENSIONS, list_images
from evaluation import PROG
from evaluation.report import SUMMARY
from utils import fail

RUN_PREFIX = "run_"
OUTPUT_SUFFIXES = ("_SR.png", "_LR.png")
FIGURE = "comparison.png"


def requested_folder(opt):
    if os.path.isabs(opt.image_save_path):
        return opt.image_save_path
    return os.path.join(opt.experiment_dir, opt.image_save_path)


def holds_results(folder):
    if os.path.isfile(os.path.join(folder, SUMMARY)):
        return True
    return any(name.endswith(OUTPUT_SUFFIXES[0]) for _, _, files in os.walk(folder) for name in files)


def output_folder(opt):
    """(folder to write, whether it is a new run_N beside earlier results)."""
    folder = requested_folder(opt)
    if opt.overwrite or not holds_results(folder):
        return folder, False
    n = 2
    while os.path.exists(os.path.join(folder, f"{RUN_PREFIX}{n}")):
        n += 1
    return os.path.join(folder, f"{RUN_PREFIX}{n}"), True


def is_earlier_result(path, out_root):
    """An image test.py wrote before, when the output folder lies in --test_path."""
    name = os.path.basename(path)
    return (os.path.commonpath([out_root, os.path.realpath(path)]) == out_root
            and (name.endswith(OUTPUT_SUFFIXES) or name == FIGURE))


def find_inputs(opt, out_root):
    out_root = os.path.realpath(out_root)
    files = [f for f in list_images(opt.test_path) if not is_earlier_result(f, out_root)]
    if not files:
        fail(PROG, f"no images ({', '.join(IMAGE_EXTENSIONS)}) under --test_path {opt.test_path}")
    return files
