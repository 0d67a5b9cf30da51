"""test.py's photo mode (--real_world): every photo of --test_path through the real-photo path (faces.photo),
every video through the video path (video.clip), their outputs, report and line."""
import os
import sys

from tqdm import tqdm

from data.images import ImageReadError, read_image
from evaluation import PROG
from evaluation.outputs import input_root
from evaluation.report import write_summary
from faces import photo as ph
from faces.sizes import PhotoTooLargeError
from utils import describe_device, fail
from video.clip import DETECT_EVERY, super_resolve_video
from video.io import VideoReadError, is_video
from visualizer import write_photo_outputs


def run_video(opt, path, model, out_dir, stem):
    """One video through `super_resolve_video` into <stem>_SR.mp4; (its report entry, VideoResult)."""
    out_path = os.path.join(out_dir, stem + "_SR.mp4")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    result = super_resolve_video(path, out_path, model.predict, upscale=opt.upscale, min_face=opt.min_face,
                                 force_large=opt.force_large, raw_output=opt.raw_output,
                                 match_sigma=opt.match_sigma, detect_every=opt.detect_every or DETECT_EVERY)
    entry = {"video": os.path.basename(out_path), "frames": result.frames, "fps": float(result.fps),
             "size": list(result.size), "audio": result.audio, "faces": result.faces,
             "frames_with_face": result.frames_with_face, "match_sigma": result.match_sigma,
             "stopped": result.stopped, "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
    return entry, result


def run_photos(opt, files, model, out_dir, new_run, stems):
    """Every face of every photo of `files` the model can help super-resolved and pasted back; the outputs
    and summary.json written into out_dir, the run's line printed; returns the summary as written."""
    counts = {"photos": 0, "videos": 0, "faces": 0, "super_resolved": 0, "too_large": 0, "too_small": 0,
              "too_compressed": 0, "photos_without_face": 0}
    skipped = 0
    reports = {}
    for path in tqdm(files, desc="photos", unit="photo", disable=len(files) == 1):
        name = os.path.relpath(path, input_root(opt))
        if is_video(path):
            try:
                reports[name], result = run_video(opt, path, model, out_dir, stems[path])
            except (VideoReadError, PhotoTooLargeError) as err:
                skipped += 1
                tqdm.write(f"{PROG}: skipped {path}: {err}", file=sys.stderr)
                continue
            tqdm.write(result.report(name))
            counts["videos"] += 1
            counts["faces"] += len(result.faces)
            for key, status in (("super_resolved", ph.SUPER_RESOLVED), ("too_large", ph.TOO_LARGE),
                                ("too_small", ph.TOO_SMALL)):
                counts[key] += result.count(status)
            continue
        try:
            photo = read_image(path)
            result = ph.super_resolve_photo(photo, model.predict, upscale=opt.upscale, min_face=opt.min_face,
                                            force_large=opt.force_large, raw_output=opt.raw_output,
                                            match_sigma=opt.match_sigma)
        except (ImageReadError, PhotoTooLargeError) as err:
            skipped += 1
            tqdm.write(f"{PROG}: skipped {path}: {err}", file=sys.stderr)
            continue
        write_photo_outputs(result, photo, out_dir, stems[path])
        tqdm.write(result.report(name))
        reports[name] = {"faces": result.faces, "note": result.note, "match_sigma": result.match_sigma,
                         "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
        counts["photos"] += 1
        counts["faces"] += len(result.faces)
        counts["super_resolved"] += result.count(ph.SUPER_RESOLVED)
        counts["too_large"] += result.count(ph.TOO_LARGE)
        counts["too_small"] += result.count(ph.TOO_SMALL)
        counts["too_compressed"] += result.count(ph.TOO_COMPRESSED)
        counts["photos_without_face"] += not result.faces
    if counts["photos"] + counts["videos"] == 0:
        fail(PROG, f"none of the {len(files)} photos or videos of {opt.test_path} could be processed")
    summary = {**counts, "skipped": skipped, "upscale": opt.upscale, "device": describe_device(),
               "backend": model.name, "precision": model.precision, "weight_path": opt.weight_path,
               "mode": "real_world", "raw_output": opt.raw_output, "match_sigma": opt.match_sigma,
               "photos_report": reports}
    summary = write_summary(out_dir, summary)
    print(f"{counts['photos']} photos, " + (f"{counts['videos']} videos, " if counts["videos"] else "")
          + f"{counts['faces']} faces, {counts['super_resolved']} super-resolved -> {out_dir}"
          + (" (new run folder: the output folder held results; --overwrite writes into it)" if new_run else "")
          + (f" | {counts['too_large']} {ph.TOO_LARGE}" if counts["too_large"] else "")
          + (f" | {counts['too_small']} under --min_face" if counts["too_small"] else "")
          + (f" | {counts['too_compressed']} {ph.TOO_COMPRESSED}" if counts["too_compressed"] else "")
          + (f" | skipped {skipped}" if skipped else ""))
    return summary
