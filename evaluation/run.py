"""test.py's run: read, super-resolve and measure every face (or, --real_world, every photo), and report."""
import csv
import json
import math
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from data.degradation import degrade_test, match_input
from data.images import ImageReadError, prepare_hr, prepare_lr, read_image, upscale_bicubic
from evaluation import PROG
from evaluation.outputs import FIGURE, OUTPUT_SUFFIXES, find_inputs, output_folder, requested_folder
from evaluation.setup import brisque_on, face_evaluator, identities, load_model, optional_off_line
from faces import photo as ph
from faces.sizes import PhotoTooLargeError
from metrics import brisque, intervals
from metrics.evaluator import Evaluation, prefetched
from metrics.identification import (
    HIT_SUFFIX,
    IDENTITY_COLUMN,
    per_face as identification_hits,
    summary as identification_summary,
)
from utils import describe_device, fail, finite_mean, output_stems, to_uint8
from visualizer import comparison_figure, write_photo_outputs

METRIC_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y", "bicubic_psnr", "bicubic_ssim")


def read(path, opt):
    """(hr, lr, None), or (None, None, the ImageReadError) for a file that cannot be read."""
    try:
        return (*prepare(path, opt), None)
    except ImageReadError as err:
        return None, None, err


def prepare(path, opt):
    """(hr uint8 or None, lr uint8) for one input file; raises ImageReadError."""
    image = read_image(path)
    if opt.lr_input:
        return None, prepare_lr(image, opt.lr_size)
    hr = prepare_hr(image, opt.load_size, opt.crop_size, opt.dataset_mode)
    return hr, degrade_test(hr, opt.degradation)


def batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def json_value(value):
    """NaN / inf (no image to average, identical images) as null: summary.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_line(processed, out_dir, summary, new_run, skipped):
    def pair(key, fmt, unit=""):
        """'value (bicubic value)' of a summary key; n/a where the mean is undefined."""
        values = [summary[k] for k in (key, "bicubic_" + key)]
        return " (bicubic ".join("n/a" if v is None else f"{v:{fmt}}{unit}" for v in values) + ")"

    # TAR network stays in summary.json only: with the FaceNet weights one can get, it is 0 for every
    # method at the paper's thresholds (docs/evaluation.md, "How far to trust TAR")
    line = f"{processed} images -> {out_dir}"
    if new_run:
        line += " (new run folder: the output folder held results; --overwrite writes into it)"
    for key, label, fmt, unit in (("psnr", "PSNR", ".2f", " dB"), ("ssim", "SSIM", ".4f", ""),
                                  ("fr_psnr", "FR-PSNR", ".2f", " dB"), ("vif", "VIF", ".3f", ""),
                                  ("tar_algo_0.6", "TAR algorithm@0.6", ".1f", "%"),
                                  ("brisque", "BRISQUE", ".1f", ""), ("rank1", "rank-1", ".1f", "%")):
        if key in summary:
            line += f" | {label} {pair(key, fmt, unit)}"
    left_out = summary.get("left_out_of_means")
    if left_out:
        line += " | left out of the means as inf/NaN: " + ", ".join(f"{k} {n}" for k, n in left_out.items())
    if skipped:
        line += f" | skipped {skipped}"
    return line


def write_metrics_csv(path, rows, columns, labels=None, hits=None):
    """One row per face: its name, `columns` of its metrics row, and with identities its identity and rank-1 hits."""
    hit_keys = tuple(hits) if hits is not None else ()
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("name",) + columns + ((IDENTITY_COLUMN,) + tuple(k + HIT_SUFFIX for k in hit_keys)
                                               if labels is not None else ()))
        for i, row in enumerate(rows):
            writer.writerow([row["name"]] + [f"{row[k]:.6f}" for k in columns]
                            + ([labels[i]] + [int(hits[k][i]) for k in hit_keys] if labels is not None else []))


def real_world(opt, files, model, out_dir, new_run, stems):
    """--real_world: every face of every photo the model can help super-resolved and pasted back."""
    counts = {"photos": 0, "faces": 0, "super_resolved": 0, "too_large": 0, "too_small": 0,
              "photos_without_face": 0}
    skipped = 0
    reports = {}
    for path in tqdm(files, desc="photos", unit="photo"):
        name = os.path.relpath(path, opt.test_path)
        try:
            photo = read_image(path)
            result = ph.super_resolve_photo(photo, model.predict, upscale=opt.upscale, min_face=opt.min_face,
                                            force_large=opt.force_large, raw_output=opt.raw_output)
        except (ImageReadError, PhotoTooLargeError) as err:
            skipped += 1
            tqdm.write(f"{PROG}: skipped {path}: {err}", file=sys.stderr)
            continue
        write_photo_outputs(result, photo, out_dir, stems[path])
        tqdm.write(result.report(name))
        reports[name] = {"faces": result.faces, "note": result.note,
                         "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
        counts["photos"] += 1
        counts["faces"] += len(result.faces)
        counts["super_resolved"] += result.count(ph.SUPER_RESOLVED)
        counts["too_large"] += result.count(ph.TOO_LARGE)
        counts["too_small"] += result.count(ph.TOO_SMALL)
        counts["photos_without_face"] += not result.faces
    if counts["photos"] == 0:
        fail(PROG, f"none of the {len(files)} photos under {opt.test_path} could be processed")
    summary = {**counts, "skipped": skipped, "upscale": opt.upscale, "device": describe_device(),
               "backend": model.name, "precision": model.precision, "weight_path": opt.weight_path,
               "mode": "real_world", "raw_output": opt.raw_output, "photos_report": reports}
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(f"{counts['photos']} photos, {counts['faces']} faces, {counts['super_resolved']} super-resolved -> {out_dir}"
          + (" (new run folder: the output folder held results; --overwrite writes into it)" if new_run else "")
          + (f" | {counts['too_large']} {ph.TOO_LARGE}" if counts["too_large"] else "")
          + (f" | {counts['too_small']} under --min_face" if counts["too_small"] else "")
          + (f" | skipped {skipped}" if skipped else ""))
    return summary


def run(opt):
    """test.py's work once TensorFlow has started: every face or photo of --test_path; returns the summary."""
    files = find_inputs(opt, requested_folder(opt))
    model = load_model(opt)
    off = {}
    evaluator = face_evaluator(opt, off)
    with_brisque = brisque_on(opt, off)
    if optional_off_line(off):
        print(optional_off_line(off), file=sys.stderr, flush=True)
    identity_of = identities(opt, files, evaluator)
    out_dir, new_run = output_folder(opt)
    os.makedirs(out_dir, exist_ok=True)
    stems = dict(zip(files, output_stems(files, opt.test_path)))
    if opt.real_world:
        return real_world(opt, files, model, out_dir, new_run, stems)

    samples, skipped, names, row_paths = [], [], [], []
    generator_seconds, processed, warmed_up = 0.0, 0, False
    evaluation = Evaluation(opt.workers, evaluator, with_brisque)
    progress = tqdm(total=len(files), desc="evaluating", unit="face")
    wall_start = time.perf_counter()
    for chunk, prepared in prefetched(batches(files, opt.batchSize), lambda chunk: [read(p, opt) for p in chunk]):
        good = [(path, hr, lr) for path, (hr, lr, err) in zip(chunk, prepared) if err is None]
        for path, (_, _, err) in zip(chunk, prepared):
            if err is not None:
                skipped.append(path)
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
        generator_seconds += time.perf_counter() - start
        processed += len(good)

        for i, (path, hr, lr) in enumerate(good):
            stem = stems[path]
            sr = to_uint8(sr_batch[i] if opt.raw_output else match_input(sr_batch[i], lr))
            bicubic = upscale_bicubic(lr, sr.shape[0] // lr.shape[0])
            evaluation.add(sr, bicubic, hr, [os.path.join(out_dir, stem + suffix) for suffix in OUTPUT_SUFFIXES])
            names.append(stem)
            row_paths.append(path)
            if len(samples) < opt.num_figures:
                samples.append({"name": os.path.basename(stem), "lr": lr, "bicubic": bicubic, "sr": sr, "hr": hr,
                                "edges": [e[i] for e in edges] if edges is not None else None})
        progress.update(evaluation.completed())
    rows, paths = [], []
    for name, path, row in zip(names, row_paths, evaluation.finish()):
        if row is not None:
            rows.append({"name": name, **row})
            paths.append(path)
    wall_seconds = time.perf_counter() - wall_start
    progress.update(evaluation.completed())
    progress.close()

    if processed == 0:
        fail(PROG, f"none of the {len(files)} images under {opt.test_path} could be read")
    if samples:
        comparison_figure(samples, os.path.join(out_dir, FIGURE),
                          title=f"EIPNet x8: {os.path.basename(os.path.normpath(opt.weight_path))}")
    summary = {"images": processed, "skipped": len(skipped),
               "images_per_s": processed / generator_seconds if generator_seconds > 0 else None,
               "faces_per_s": processed / wall_seconds, "workers": opt.workers,
               "device": describe_device(), "backend": model.name,
               "precision": model.precision, "weight_path": opt.weight_path,
               "mode": "lr_input" if opt.lr_input else "hr", "raw_output": opt.raw_output}
    if not opt.lr_input:
        summary["degradation"] = opt.degradation
    if rows:
        mean_keys = METRIC_KEYS + (brisque.KEYS if with_brisque else ())
        columns = mean_keys + (evaluator.per_image_keys if evaluator is not None else ())
        labels = [identity_of[p] for p in paths] if identity_of is not None else None
        hits = identification_hits(rows, labels) if labels is not None else None
        write_metrics_csv(os.path.join(out_dir, "metrics.csv"), rows, columns, labels, hits)
        means = {k: finite_mean([row[k] for row in rows]) for k in mean_keys}
        summary.update({k: value for k, (value, _) in means.items()})
        summary["left_out_of_means"] = {k: n for k, (_, n) in means.items() if n}
        if evaluator is not None:
            summary.update(evaluator.summary(rows))
        if labels is not None:
            summary.update(identification_summary(hits, labels))
        summary["intervals"] = intervals.summary(rows, labels, hits)
    summary = {k: json_value(v) for k, v in summary.items()}
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, allow_nan=False)

    print(summary_line(processed, out_dir, summary, new_run, len(skipped)) + intervals.line(summary.get("intervals")))
    return summary

