"""Compare two test.py runs on the same faces: run A minus run B, paired per face, with 95% intervals.

    python -m scripts.compare_runs RUN_A RUN_B [--output comparison.json]
    python -m scripts.compare_runs /tmp/finetune_a /tmp/finetune_b

RUN_A and RUN_B are test.py output folders (their metrics.csv) of two
checkpoints or settings on the same faces, e.g. two fine-tunes scored on
celeba-unseen. Faces are paired by their name (metrics.csv's first column,
the input's path relative to --test_path); faces only one run has are left
out and counted. For each figure both runs have (PSNR, SSIM, FR-PSNR, VIF,
BRISQUE, TAR, rank-1, ...: metrics.intervals' per-face values of the SR
images) it prints each run's mean and the mean of A minus B over the paired
faces with its 95% interval, by bootstrap over people when both runs carry
the faces' identities (metrics.csv's identity column, written when rank-1
ran), else over faces. "A better"/"B better" is said only where the
interval excludes zero (lower is better for BRISQUE). A's and B's rank-1
each match against their own run's HR gallery: the same HR faces when the
runs share --test_path and identities.
"""
import argparse
import csv
import json
import os

import numpy as np

from metrics import intervals
from metrics.identification import HIT_SUFFIX, IDENTITY_COLUMN
from utils import atomic_write_text, fail, warn

PROG = "compare_runs"
METRICS_CSV = "metrics.csv"
# figures where a lower value is the better one
LOWER_IS_BETTER = ("brisque",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.compare_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", help="test.py output folder of run A (holds metrics.csv)")
    p.add_argument("run_b", help="test.py output folder of run B, on the same faces")
    p.add_argument("--output", default=None, help="also write the comparison as JSON to this file")
    return p.parse_args(argv)


def read_run(folder):
    """{face name: metrics.csv row}, numbers as floats, the identity as text."""
    path = os.path.join(folder, METRICS_CSV)
    if not os.path.isfile(path):
        fail(PROG, f"no {METRICS_CSV} in {folder}: give test.py output folders of runs with HR faces")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        fail(PROG, f"{path} holds no faces")
    return {r["name"]: {k: (v if k in ("name", IDENTITY_COLUMN) else float(v)) for k, v in r.items()} for r in rows}


def sr_values(rows):
    """metrics.intervals.per_face() of the SR images of metrics.csv rows, rank-1 from its hit column."""
    key = "rank1" + HIT_SUFFIX
    hits = {"rank1": np.array([r[key] for r in rows], bool)} if key in rows[0] else None
    return intervals.per_face(rows, hits)


def compare(run_a, run_b):
    """The comparison's record: the resampling, faces paired and left out, and per figure A, B, A - B."""
    names = sorted(set(run_a) & set(run_b))
    if not names:
        fail(PROG, "the two runs share no face names: compare runs of test.py on the same --test_path")
    a_rows, b_rows = [run_a[n] for n in names], [run_b[n] for n in names]
    labels = None
    if IDENTITY_COLUMN in a_rows[0] and IDENTITY_COLUMN in b_rows[0]:
        labels = [r[IDENTITY_COLUMN] for r in a_rows]
        if labels != [r[IDENTITY_COLUMN] for r in b_rows]:
            fail(PROG, "the runs give some faces different identities: run both with the same --identities")
    groups = np.asarray(labels) if labels is not None else np.arange(len(names))
    a, b = sr_values(a_rows), sr_values(b_rows)
    figures = {}
    for key, diff in intervals.compare(a, b, groups).items():
        figures[key] = {"a": intervals.mean_interval(a[key], groups)[0],
                        "b": intervals.mean_interval(b[key], groups)[0], "a_minus_b": diff}
    return {**intervals.describe(labels, len(names)), "only_in_a": len(set(run_a) - set(names)),
            "only_in_b": len(set(run_b) - set(names)), "figures": figures}


def verdict(key, diff):
    ci = diff["ci"]
    if ci is None or ci[0] <= 0 <= ci[1]:
        return "no clear difference"
    a_higher = ci[0] > 0
    return "A better" if a_higher != (key in LOWER_IS_BETTER) else "B better"


def report(result, run_a, run_b):
    over = f"{result['people']} people" if result["resampled"] == "people" else f"{result['faces']} faces"
    lines = [f"A: {run_a}", f"B: {run_b}",
             f"{result['faces']} faces paired; {result['confidence']:.0%} intervals by bootstrap over {over} "
             f"({result['resamples']} resamples, seed {result['seed']})",
             f"{'figure':<14} {'A':>9} {'B':>9} {'A - B':>9}  interval"]
    def number(value, fmt):
        return f"{'n/a':>9}" if value is None else f"{value:>{fmt}}"

    for key, fig in result["figures"].items():
        d = fig["a_minus_b"]
        span = "n/a" if d["ci"] is None else f"[{d['ci'][0]:+.4g}, {d['ci'][1]:+.4g}]"
        lines.append(f"{key:<14} {number(fig['a'], '9.4g')} {number(fig['b'], '9.4g')} "
                     f"{number(d['mean'], '+9.4g')}  {span}  {verdict(key, d)}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    run_a, run_b = read_run(args.run_a), read_run(args.run_b)
    result = compare(run_a, run_b)
    if result["only_in_a"] or result["only_in_b"]:
        warn(PROG, f"left out {result['only_in_a']} faces only in A and {result['only_in_b']} only in B")
    print(report(result, args.run_a, args.run_b))
    if args.output:
        atomic_write_text(args.output, json.dumps({"run_a": args.run_a, "run_b": args.run_b, **result}, indent=2))
    return result


if __name__ == "__main__":
    main()
