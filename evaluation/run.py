"""test.py's run: its inputs, model and metrics, then the mode's stages (faces: evaluation.faces, then
evaluation.summary; photos: evaluation.photos), each report written by evaluation.report."""
import os
import sys

from evaluation import PROG
from evaluation.faces import evaluate_faces
from evaluation.outputs import FIGURE, find_inputs, input_root, output_folder, requested_folder
from evaluation.photos import run_photos
from evaluation.report import write_metrics_csv, write_summary
from evaluation.setup import brisque_on, face_metrics_for, identities, load_model, optional_off_line
from evaluation.summary import csv_columns, identities_and_hits, summarise, summary_line
from metrics import intervals
from utils import fail, output_stems
from visualizer import comparison_figure


def run(opt):
    """test.py's work once TensorFlow has started: every face or photo of --test_path; returns the summary."""
    files = find_inputs(opt, requested_folder(opt))
    model = load_model(opt)
    off = {}
    face_metrics = face_metrics_for(opt, off)
    with_brisque = brisque_on(opt, off)
    if optional_off_line(off):
        print(optional_off_line(off), file=sys.stderr, flush=True)
    identity_of = identities(opt, files, face_metrics)
    out_dir, new_run = output_folder(opt)
    os.makedirs(out_dir, exist_ok=True)
    stems = dict(zip(files, output_stems(files, input_root(opt))))
    if opt.real_world:
        return run_photos(opt, files, model, out_dir, new_run, stems)
    return run_faces(opt, files, model, face_metrics, with_brisque, identity_of, out_dir, new_run, stems)


def run_faces(opt, files, model, face_metrics, with_brisque, identity_of, out_dir, new_run, stems):
    """The face modes (HR, --lr_input): evaluate, draw, summarise, report; returns the summary as written."""
    face_run = evaluate_faces(opt, files, model, face_metrics, with_brisque, out_dir, stems)
    if face_run.processed == 0:
        fail(PROG, f"none of the {len(files)} images under {opt.test_path} could be read")
    if face_run.samples:
        comparison_figure(face_run.samples, os.path.join(out_dir, FIGURE),
                          title=f"EIPNet x8: {os.path.basename(os.path.normpath(opt.weight_path))}")
    labels, hits = identities_and_hits(face_run, identity_of)
    if face_run.rows:
        write_metrics_csv(out_dir, face_run.rows, csv_columns(with_brisque, face_metrics), labels, hits)
    summary = write_summary(out_dir, summarise(opt, face_run, model, face_metrics, with_brisque, labels, hits))
    print(summary_line(face_run.processed, out_dir, summary, new_run, len(face_run.skipped))
          + intervals.line(summary.get("intervals")))
    return summary
