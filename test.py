"""Super-resolve faces with a trained EIPNet generator and measure the results.

    python test.py                                   # sample faces, default checkpoint
    python test.py --weight_path checkpoint/CelebA   # folder with G_weight.ckpt or generator.weights.h5
    python test.py --test_path LR_DIR --lr_input --image_save_path /abs/out
    python test.py --no_fr --no_vif --no_tar_algo --no_tar_net --no_brisque   # PSNR/SSIM only (fast)
    python test.py --test_path ../shared/data/celeba-unseen --degradation jpeg   # strangers, JPEG'd input

Each output is the generator's, corrected to agree with its 16x16 input
(data.degradation.match_input); --raw_output keeps the generator's own, as
the paper scores it. Writes <stem>_SR.png and <stem>_LR.png per image, comparison.png, summary.json
and (HR mode) metrics.csv into <checkpoint_path>/<save_path>/<image_save_path>,
or into a new run_N sub-folder of it when it already holds results (see
--overwrite). HR mode measures PSNR/SSIM (RGB and Y) and, unless switched off,
the paper's FR-PSNR/FR-SSIM, VIF, identity TAR and BRISQUE, each also for
bicubic, and rank-1 identification among the people of --test_path (SR,
bicubic, HR) when its faces belong to several identities; every mean and SR-bicubic
difference with its 95% interval, by bootstrap over those people, else over faces
(metrics.intervals).
Unreadable images are reported and skipped.
"""
import csv
import json
import math
import os
import sys
import time

from options.test_options import NO_CHECKPOINT_HELP, TestOptions
from utils import start_tensorflow

if __name__ == "__main__":
    OPT = TestOptions().parse()  # --gpu_ids must reach CUDA before TensorFlow loads
start_tensorflow()

import numpy as np
from tqdm import tqdm

from data import photo as ph
from data.alignment import PhotoTooLargeError
from data.degradation import degrade_test, match_input
from data.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    list_images,
    prepare_hr,
    prepare_lr,
    read_image,
    upscale_bicubic,
)
from deploy.inference import load_inference
from deploy.int8 import int8_inference, lacks_vnni
from metrics import brisque, intervals
from metrics.evaluator import Evaluation, IdentityEvaluator, prefetched
from metrics.face import INSTALL_HINT, FaceTools
from metrics.identification import (
    HIT_SUFFIX,
    IDENTITY_COLUMN,
    identifiable,
    per_face as identification_hits,
    summary as identification_summary,
)
from metrics.identity import load_identity_network
from metrics.vif import min_size
from models import CheckpointError
from models.generator import MIXED_POLICY
from models.identity import IdentityWeightsError, find_weights
from scripts.identity_roc import IdentityRocError, face_labels
from utils import describe_device, fail, finite_mean, output_stems, to_uint8, warn
from visualizer import comparison_figure, write_photo_outputs

PROG = "test.py"
METRIC_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y", "bicubic_psnr", "bicubic_ssim")
RUN_PREFIX = "run_"
OUTPUT_SUFFIXES = ("_SR.png", "_LR.png")
FIGURE = "comparison.png"
EVAL_INSTALL = f"install: {INSTALL_HINT}"  # dlib, its face models and brisque


def requested_folder(opt):
    if os.path.isabs(opt.image_save_path):
        return opt.image_save_path
    return os.path.join(opt.experiment_dir, opt.image_save_path)


def holds_results(folder):
    if os.path.isfile(os.path.join(folder, "summary.json")):
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


def load_model(opt):
    if opt.int8:
        if lacks_vnni():
            warn(PROG, "this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8 in /proc/cpuinfo): int8 may run no "
                 "faster than float32 here")
        try:
            return int8_inference(opt.weight_path, opt.lr_size, opt.batchSize,
                                  log=lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True))
        except CheckpointError as err:
            fail(PROG, f"{err}; {NO_CHECKPOINT_HELP}" if "no checkpoint" in str(err) else str(err))
    try:
        return load_inference(opt.weight_path, lr_size=opt.lr_size, output_nc=opt.output_nc,
                              policy=MIXED_POLICY if opt.mixed_precision else None)
    except CheckpointError as err:
        fail(PROG, f"{err}; {NO_CHECKPOINT_HELP}")


def optional_off_line(off):
    """The one informational line naming the optional metrics that cannot run here and how to enable
    them; off: {how to enable: [metric names]}. None when all can run."""
    if not off:
        return None
    parts = [f"{', '.join(names)} ({how})" for how, names in off.items()]
    return (f"{PROG}: info: optional metrics off: {'; '.join(parts)}. The --no_fr, --no_tar_algo, --no_tar_net "
            "and --no_brisque flags silence this line")


def face_evaluator(opt, off):
    """IdentityEvaluator for the requested paper metrics, less those that cannot run here (added to `off`,
    {how to enable: [names]}, for `optional_off_line`)."""
    if opt.lr_input or opt.real_world:
        return None
    want = {"fr": not opt.no_fr, "vif": not opt.no_vif, "tar_algo": not opt.no_tar_algo,
            "tar_net": not opt.no_tar_net}
    if want["vif"] and opt.crop_size < min_size():
        warn(PROG, f"VIF is off: it needs faces of at least {min_size()} px, --crop_size is {opt.crop_size}")
        want["vif"] = False
    face_tools = identity_network = None
    if want["fr"] or want["tar_algo"]:
        try:
            face_tools = FaceTools().check(descriptors=want["tar_algo"])
        except ImportError:  # EvalDependencyError: dlib or its model files
            names = [n for n, on in (("FR-PSNR/FR-SSIM", want["fr"]), ("TAR algorithm", want["tar_algo"])) if on]
            off.setdefault(EVAL_INSTALL, []).extend(names)
            want["fr"] = want["tar_algo"] = False
    if want["tar_net"]:
        reason = None
        try:
            path = find_weights(opt.id_weights)
        except IdentityWeightsError:
            reason = (f"FaceNet weights file not found: {opt.id_weights}" if opt.id_weights
                      else "no FaceNet weights found")
        else:
            try:
                identity_network = load_identity_network(path)
            except (ImportError, IdentityWeightsError) as err:
                reason = str(err).splitlines()[0]
        if reason:
            off.setdefault(f"{reason}: run `python -m scripts.get_facenet_weights` or pass --id_weights PATH",
                           []).append("TAR network")
            want["tar_net"] = False
    if not any(want.values()):
        return None
    return IdentityEvaluator(**want, face_tools=face_tools, identity_network=identity_network)


def brisque_on(opt, off):
    """Whether BRISQUE runs: HR mode, not switched off, and its package installed (else added to `off`)."""
    if opt.no_brisque or opt.lr_input or opt.real_world:
        return False
    try:
        brisque.load_model()
    except ImportError:  # EvalDependencyError: the brisque package
        off.setdefault(EVAL_INSTALL, []).append("BRISQUE")
        return False
    return True


def identities(opt, files, evaluator):
    """{path: identity} when rank-1 identification can run (dlib descriptors, 2+ identities), else None."""
    if opt.lr_input or evaluator is None or not evaluator.tar_algo:
        if opt.identities:
            warn(PROG, "rank-1 identification off: it needs HR mode and the TAR algorithm's dlib descriptors")
        return None
    try:
        labels = face_labels(files, opt.identities)
    except IdentityRocError as err:
        fail(PROG, err)
    if identifiable(labels):
        return dict(zip(files, labels))
    if opt.identities:
        warn(PROG, f"rank-1 identification off: the {len(files)} faces are of {len(set(labels))} identities in "
             f"{opt.identities}; it needs 2 or more, one of them with 2 faces")
    return None


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


def main(opt):
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


if __name__ == "__main__":
    main(OPT)
