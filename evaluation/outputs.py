"""Where test.py reads and writes: its inputs, and an output folder that never overwrites earlier results."""
import os

from data.images import IMAGE_EXTENSIONS, list_images
from evaluation import PROG
from evaluation.report import SUMMARY
from utils import fail
from video.io import VIDEO_EXTENSIONS

RUN_PREFIX = "run_"
OUTPUT_SUFFIXES = ("_SR.png", "_LR.png", "_SR.mp4")
FIGURE = "comparison.png"


def requested_folder(opt):
    if os.path.isabs(opt.image_save_path):
        return opt.image_save_path
    return os.path.join(opt.experiment_dir, opt.image_save_path)


def holds_results(folder):
    if os.path.isfile(os.path.join(folder, SUMMARY)):
        return True
    return any(name.endswith((OUTPUT_SUFFIXES[0], OUTPUT_SUFFIXES[2])) for _, _, files in os.walk(folder)
               for name in files)


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


def input_root(opt):
    """The folder output names are made relative to: --test_path, or the folder of the one file it names."""
    return opt.test_path if os.path.isdir(opt.test_path) else os.path.dirname(os.path.abspath(opt.test_path))


def find_inputs(opt, out_root):
    """The images (and with --real_world the videos) of --test_path, or the one file it names."""
    out_root = os.path.realpath(out_root)
    extensions = IMAGE_EXTENSIONS + (VIDEO_EXTENSIONS if opt.real_world else ())
    if os.path.isfile(opt.test_path):
        if not opt.test_path.lower().endswith(extensions):
            fail(PROG, f"--test_path {opt.test_path} is neither a photo ({', '.join(IMAGE_EXTENSIONS)}) nor a "
                       f"video ({', '.join(VIDEO_EXTENSIONS)})")
        return [opt.test_path]
    files = [f for f in list_images(opt.test_path, extensions) if not is_earlier_result(f, out_root)]
    if not files:
        fail(PROG, f"no images ({', '.join(extensions)}) under --test_path {opt.test_path}")
    return files
