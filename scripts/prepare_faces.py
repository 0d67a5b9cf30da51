"""Training faces from a folder of ordinary photos, framed as the real-photo path frames them.

    python -m scripts.prepare_faces PHOTOS OUT [--workers N]

Every face the real-photo detector finds in the photos under PHOTOS
(recursively) is written to OUT as a 128x128 PNG, the HR frame `train.py
--train_path OUT` reads as it is: OUT/<photo>_<k>.png for the photo's k-th
face from the left, in the photos' own sub-folders (a folder per person stays
a folder per person). Faces too small for the 128 frame, too blurred, or
near-duplicates of a face already written are skipped (faces/prepare.py says
how each is measured); files that cannot be read are reported and skipped.

OUT/prepare_faces.jsonl records each photo done, one JSON line each, before
its faces are written: a rerun skips the photos it lists whose faces are all
there, so an interrupted run resumes. OUT/prepare_faces_report.json counts
faces by outcome over all runs (also printed) and lists the unreadable files.
OUT must be new, empty, or a folder this script wrote.
"""
import argparse
import os

from data.constants import PREPARE_FACES_LOG
from utils import start_tensorflow, usable_cores


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.prepare_faces", description=__doc__.split("\n\n")[0])
    p.add_argument("photos", metavar="PHOTOS", help="folder of photos (searched recursively)")
    p.add_argument("out", metavar="OUT", help="folder the faces, the log and the report are written to")
    p.add_argument("--workers", type=int, default=usable_cores(),
                   help="processes detecting faces, each on one core (default: every core this process may use)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.photos):
        p.error(f"PHOTOS {args.photos} is not a folder")
    photos, out = os.path.realpath(args.photos), os.path.realpath(args.out)
    if out == photos or out.startswith(photos + os.sep):
        p.error("OUT must not be inside PHOTOS: its faces would be read as photos on a rerun")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        p.error(f"OUT {args.out} is a file")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    ours = os.path.exists(os.path.join(args.out, PREPARE_FACES_LOG))
    if os.path.isdir(args.out) and os.listdir(args.out) and not ours:
        p.error(f"OUT {args.out} holds files this script did not write (no {PREPARE_FACES_LOG}): choose a new OUT")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None; --help and refusals answer before TensorFlow loads), start
    TensorFlow, write the faces; returns the report."""
    args = parse_args(argv)
    start_tensorflow()
    from faces.prepare_folder import prepare_faces

    return prepare_faces(args)


if __name__ == "__main__":
    main()
