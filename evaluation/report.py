"""The files a test.py run reports in, one writer each, the same rules for every mode.

summary.json is strict JSON: a NaN or inf anywhere in it (a mean over no face, identical
images) is written as null. metrics.csv holds one row per face, six decimals.
"""
import csv
import json
import math
import os

from data.constants import METRICS_CSV
from metrics.identification import HIT_SUFFIX, IDENTITY_COLUMN

SUMMARY = "summary.json"


def json_value(value):
    """`value` with every NaN / inf in it, however deep, as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def write_summary(out_dir, summary):
    """summary.json in out_dir; returns the summary as written (NaN / inf as None)."""
    summary = json_value(summary)
    with open(os.path.join(out_dir, SUMMARY), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, allow_nan=False)
    return summary


def write_metrics_csv(out_dir, rows, columns, labels=None, hits=None):
    """metrics.csv in out_dir: one row per face, its name, `columns` of its metrics row, and with identities
    its identity and rank-1 hits."""
    hit_keys = tuple(hits) if hits is not None else ()
    with open(os.path.join(out_dir, METRICS_CSV), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("name",) + columns + ((IDENTITY_COLUMN,) + tuple(k + HIT_SUFFIX for k in hit_keys)
                                               if labels is not None else ()))
        for i, row in enumerate(rows):
            writer.writerow([row["name"]] + [f"{row[k]:.6f}" for k in columns]
                            + ([labels[i]] + [int(hits[k][i]) for k in hit_keys] if labels is not None else []))
