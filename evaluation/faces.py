"""test.py's face mode, one stage: read, super-resolve and measure every face; the rows, samples and timings.

Each output is the generator's, corrected to agree with its 16x16 input (data.degradation.match_input)
unless --raw_output; the per-face metrics run in metrics.evaluator.Evaluation's workers while the
generator goes on, and the images are written there too.
"""
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from data.degradation import InputDegradation, degrade_test, match_input
from data.images import ImageReadError, prepare_hr, prepare_lr, read_image, upscale_bicubic
from evaluation import PROG
from evaluation.outputs import OUTPUT_SUFFIXES
from metrics.evaluator import Evaluation, prefetched
from utils import to_uint8


@dataclass
class FaceRun:
    """What evaluating the faces of --test_path gave."""
    rows: list = field(default_factory=list)      # per face measured: {"name": its output stem, metric: value}
    paths: list = field(default_factory=list)     # the input file of each row
    samples: list = field(default_factory=list)   # the first --num_figures faces, for comparison.png
    skipped: list = field(default_factory=list)   # files that could not be read
    processed: int = 0                            # faces through the generator
    generator_seconds: float = 0.0                # in the generator, after its first (tracing) call
    wall_seconds: float = 0.0                     # the whole loop


def input_degradation(opt):
    """The data.degradation.InputDegradation that test.py's options ask for."""
    return InputDegradation.of(opt.degradation, opt.blur_sigma, opt.noise_sigma, opt.jpeg_quality)


def read(path, opt, name):
    """(hr, lr, None), or (None, None, the ImageReadError) for a file that cannot be read."""
    try:
        return (*prepare(path, opt, name), None)
    except ImageReadError as err:
        return None, None, err


def prepare(path, opt, name):
    """(hr uint8 or None, lr uint8) for one input file, whose output stem is `name` (it seeds the input's
    noise: its path under --test_path, so neither the folder's place nor the order of reading changes it);
    raises ImageReadError."""
    image = read_image(path)
    if opt.lr_input:
        return None, prepare_lr(image, opt.lr_size)
    hr = prepare_hr(image, opt.load_size, opt.crop_size, opt.dataset_mode)
    return hr, degrade_test(hr, input_degradation(opt), name)


def batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_faces(opt, files, model, face_metrics, with_brisque, out_dir, stems):
    """Every face of `files` through `model`, measured (`face_metrics`: the paper's face metrics, a
    metrics.evaluator.FaceMetrics, or None; BRISQUE when `with_brisque`) and written into out_dir as
    <stem>_SR.png / _LR.png; a FaceRun."""
    done = FaceRun()
    names, row_paths = [], []
    warmed_up = False
    evaluation = Evaluation(opt.workers, face_metrics, with_brisque)
    progress = tqdm(total=len(files), desc="evaluating", unit="face")
    wall_start = time.perf_counter()
    def load(chunk):
        return [read(p, opt, stems[p]) for p in chunk]

    for chunk, prepared in prefetched(batches(files, opt.batchSize), load):
        good = [(path, hr, lr) for path, (hr, lr, err) in zip(chunk, prepared) if err is None]
        for path, (_, _, err) in zip(chunk, prepared):
            if err is not None:
                done.skipped.append(path)
                tqdm.write(f"{PROG}: skipped {path}: {err}", file=sys.stderr)
        progress.update(len(chunk) - len(good))
        if not good:
            continue
        lr_batch = np.stack([lr for _, _, lr in good]).astype(np.float32)
        if not warmed_up:
            model.predict(lr_batch)  # tracing and kernel set-up stay out of the timing
            warmed_up = True
        start = time.perf_counter()
        sr_batch, edges = model.predict(lr_batch)
        done.generator_seconds += time.perf_counter() - start
        done.processed += len(good)

        for i, (path, hr, lr) in enumerate(good):
            stem = stems[path]
            sr = to_uint8(sr_batch[i] if opt.raw_output else match_input(sr_batch[i], lr, opt.match_sigma))
            bicubic = upscale_bicubic(lr, sr.shape[0] // lr.shape[0])
            evaluation.add(sr, bicubic, hr, [os.path.join(out_dir, stem + suffix) for suffix in OUTPUT_SUFFIXES])
            names.append(stem)
            row_paths.append(path)
            if len(done.samples) < opt.num_figures:
                done.samples.append({"name": os.path.basename(stem), "lr": lr, "bicubic": bicubic, "sr": sr,
                                     "hr": hr, "edges": [e[i] for e in edges] if edges is not None else None})
        progress.update(evaluation.completed())
    for name, path, row in zip(names, row_paths, evaluation.finish()):
        if row is not None:
            done.rows.append({"name": name, **row})
            done.paths.append(path)
    done.wall_seconds = time.perf_counter() - wall_start
    progress.update(evaluation.completed())
    progress.close()
    return done
