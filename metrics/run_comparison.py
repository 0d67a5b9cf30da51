"""Two test.py runs on the same faces compared, per face, with intervals: the work of
`python -m scripts.compare_runs` (what it reports: that script's docstring).
"""
import csv
import json
import os

import numpy as np

from data.constants import METRICS_CSV
from metrics import intervals
from metrics.identification import HIT_SUFFIX, IDENTITY_COLUMN
from utils import atomic_write_text, fail, warn

PROG = "compare_runs"
# figures where a lower value is the better one
LOWER_IS_BETTER = ("brisque",)


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


def run(args):
    """The comparison scripts/compare_runs.py's `args` ask for: printed, and written as JSON with --output;
    returns it."""
    run_a, run_b = read_run(args.run_a), read_run(args.run_b)
    result = compare(run_a, run_b)
    if result["only_in_a"] or result["only_in_b"]:
        warn(PROG, f"left out {result['only_in_a']} faces only in A and {result['only_in_b']} only in B")
    print(report(result, args.run_a, args.run_b))
    if args.output:
        atomic_write_text(args.output, json.dumps({"run_a": args.run_a, "run_b": args.run_b, **result}, indent=2))
    return result

