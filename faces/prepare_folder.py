"""Training faces from a folder of photos, resumably: the work of `python -m scripts.prepare_faces` (what it
writes: that script's docstring). How each face is measured and judged is faces/prepare.py.
"""
import json
import multiprocessing
import os

import cv2
from tqdm import tqdm

from data.constants import PREPARE_FACES_LOG, PREPARE_FACES_REPORT
from data.images import ImageReadError, list_images, read_image
from faces import prepare
from utils import atomic_path, atomic_write_text, fail, output_stems, write_png

OUTCOMES = (prepare.WRITTEN, prepare.TOO_SMALL, prepare.TOO_BLURRED, prepare.DUPLICATE)


def _single_threaded_worker():
    """Each worker process runs TensorFlow and OpenCV on one core: --workers processes share the machine."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cv2.setNumThreads(1)


def read_log(path):
    """{photo: its last record} from the log; a line cut short by a killed run is ignored."""
    records = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records[record["photo"]] = record
    return records


def face_files(record):
    return [face["file"] for face in record.get("faces", []) if face["file"]]


def examined(paths, workers):
    """examine_file over `paths`, in order, in `workers` processes (in this one for 1)."""
    if workers == 1 or len(paths) <= 1:
        yield from map(prepare.examine_file, paths)
        return
    # spawn, not fork: this process has started TensorFlow, whose threads a fork would not copy
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_single_threaded_worker) as pool:
        yield from pool.imap(prepare.examine_file, paths)


def report_of(records, photos):
    counts = dict.fromkeys(OUTCOMES, 0)
    for record in records.values():
        for face in record.get("faces", []):
            counts[face["status"]] += 1
    unreadable = {r["photo"]: r["error"] for r in records.values() if r.get("error")}
    no_face = sum(1 for r in records.values() if not r.get("error") and not r["faces"])
    return {"photos": photos, "photos_done": len(records), "photos_without_faces": no_face,
            "faces": counts, "unreadable": unreadable,
            "thresholds": {"min_frame_px": prepare.MIN_FRAME, "min_sharpness": prepare.MIN_SHARPNESS,
                           "duplicate_distance": prepare.DUPLICATE_DISTANCE}}


def written_before(out, records):
    """(photos whose faces are all in `out`, Signatures of those faces) from the log's records."""
    done = {p for p, r in records.items() if all(os.path.exists(os.path.join(out, f)) for f in face_files(r))}
    kept = prepare.Signatures()
    for photo in sorted(done):
        for name in face_files(records[photo]):
            try:
                kept.add(prepare.signature(read_image(os.path.join(out, name))))
            except ImageReadError as err:
                fail("prepare_faces", f"{name}: {err}: remove it and its photo's line from {PREPARE_FACES_LOG}")
    return done, kept


def judged(path, name, faces, error, kept):
    """The log record of one photo: each face's measures, outcome and file (None unless written)."""
    if error:
        tqdm.write(f"prepare_faces: skipped {path}: {error}")
        return {"photo": name, "error": error, "faces": []}
    record = {"photo": name, "faces": []}
    for face in faces:
        outcome = prepare.status(face, kept)
        record["faces"].append({"index": face["index"], "frame_px": round(face["frame_px"], 1),
                                "sharpness": round(face["sharpness"], 2), "status": outcome,
                                "file": f"{name}_{face['index']}.png" if outcome == prepare.WRITTEN else None})
    return record


def prepare_faces(args):
    """What scripts/prepare_faces.py's `args` ask for: the faces, the log and the report written into
    args.out; returns the report."""
    log_path, report_path = os.path.join(args.out, PREPARE_FACES_LOG), os.path.join(args.out, PREPARE_FACES_REPORT)
    os.makedirs(args.out, exist_ok=True)
    paths = list_images(args.photos)
    names = dict(zip(paths, (s.replace(os.sep, "/") for s in output_stems(paths, args.photos))))
    records = read_log(log_path)
    ours = {f for r in records.values() for f in face_files(r)}
    done, kept = written_before(args.out, records)
    todo = [p for p in paths if names[p] not in done]
    if len(todo) < len(paths):
        print(f"{len(paths) - len(todo)} of {len(paths)} photos done before: skipped")
    with open(log_path, "a+", encoding="utf-8") as log:
        if log.tell():
            log.seek(log.tell() - 1)
            if log.read(1) != "\n":
                log.write("\n")   # after a line a killed run cut short
        for path, faces, error in tqdm(examined(todo, args.workers), total=len(todo), unit="photo"):
            record = judged(path, names[path], faces, error, kept)
            for name in face_files(record):
                if os.path.exists(os.path.join(args.out, name)) and name not in ours:
                    fail("prepare_faces", f"{os.path.join(args.out, name)} exists and was not written by this "
                                          "script: not overwritten")
            # first the claim, then the files: a rerun redoes a photo whose files are missing,
            # and overwrites only files the log claims
            log.write(json.dumps(record) + "\n")
            log.flush()
            ours.update(face_files(record))
            for entry, face in zip(record["faces"], faces or []):
                if entry["file"]:
                    with atomic_path(os.path.join(args.out, entry["file"]), ".png") as tmp:
                        write_png(tmp, face["face"])
            records[record["photo"]] = record
    report = report_of(records, len(paths))
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["faces"]), f"({len(report['unreadable'])} unreadable files; report: {report_path})")
    return report

