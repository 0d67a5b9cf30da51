"""95% confidence intervals of test.py's means and of SR's gains over bicubic, by bootstrap over people.

A figure measured on 15 people moves with which 15 people they are far more
than with which of their photos: the faces of one person share pose, lighting
and how well the model knows that kind of face. So where identities are known
(rank-1's labels: folder names or --identities) the bootstrap resamples
people, each with all of their faces; otherwise faces.

Every summary figure is a mean over faces of a per-face value:
- psnr, ssim, psnr_y, ssim_y, fr_psnr, fr_ssim, vif, brisque: the face's
  value; a face where it is inf or NaN is left out, as test.py's means leave
  it out (FR metrics: no face found on the HR);
- tar_*: 100 if the face's identity distance is within the threshold, else 0;
  a face without a distance (no HR face) is a 0, as eq. 12 counts it;
- rank1: 100 if the face's probe is identified, else 0, with the gallery (every
  evaluated HR face) held fixed: its interval covers which probes were drawn,
  not which gallery.
Resampling people resamples pairs (sum of a person's values, count of their
faces), and the statistic is sum / sum, so each resample weighs faces as the
mean over faces does; scipy.stats.bootstrap does this with paired=True over
the two arrays. A difference (SR minus bicubic, or run A minus run B) is the
mean of the per-face differences on the faces where both values exist,
resampled the same way: paired.

Percentile intervals, not scipy's default BCa: BCa is undefined where a
figure does not vary across people (TAR at d 0.5 is 0 for nearly everyone),
and the percentile interval is what a plain bootstrap reproduces. The
resampling is seeded, so a run's intervals are reproducible.
"""
import numpy as np
from scipy.stats import bootstrap

from metrics.identity import ALGO_THRESHOLDS, NET_THRESHOLDS, tar_key

CONFIDENCE = 0.95
RESAMPLES = 9999
SEED = 0
BICUBIC_PREFIX = "bicubic_"
# summary keys whose per-face value is the metrics row's own (inf/NaN left out)
VALUE_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y", "fr_psnr", "fr_ssim", "vif", "brisque")
TAR_SOURCES = tuple((tar_key(kind, t), "dist_" + kind, t)
                    for kind, thresholds in (("algo", ALGO_THRESHOLDS), ("net", NET_THRESHOLDS))
                    for t in thresholds)
# (summary key, label, unit, format) of the figures the printed line gives intervals for
LINE_FIGURES = (("psnr", "PSNR", " dB", ".2f"), ("ssim", "SSIM", "", ".4f"), ("fr_psnr", "FR-PSNR", " dB", ".2f"),
                ("vif", "VIF", "", ".3f"), ("tar_algo_0.6", "TAR algorithm@0.6", " points", ".1f"),
                ("brisque", "BRISQUE", "", ".1f"), ("rank1", "rank-1", " points", ".1f"))


def _ratio_of_sums(sums, counts, axis=-1):
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def mean_interval(values, groups):
    """(mean, [low, high]) of the finite `values`, resampling `groups` (one label per value).

    The interval is None with fewer than two groups left (nothing to resample).
    """
    values = np.asarray(values, np.float64)
    ok = np.isfinite(values)
    if not ok.any():
        return None, None
    _, codes = np.unique(np.asarray(groups)[ok], return_inverse=True)
    sums = np.bincount(codes, weights=values[ok])
    counts = np.bincount(codes).astype(np.float64)
    mean = float(_ratio_of_sums(sums, counts))
    if len(sums) < 2:
        return mean, None
    result = bootstrap((sums, counts), _ratio_of_sums, n_resamples=RESAMPLES, vectorized=True, paired=True,
                       confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(SEED))
    return mean, [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def per_face(rows, hits=None, prefix=""):
    """{summary key: [n] per-face values} for the figures `rows` (metrics rows) hold, with `prefix`.

    hits: metrics.identification.per_face()'s {"rank1": bool, "bicubic_rank1": ...} or None.
    """
    present = set(rows[0]) if rows else set()
    out = {}
    for key in VALUE_KEYS:
        if prefix + key in present:
            out[key] = np.array([r[prefix + key] for r in rows], np.float64)
    for key, source, threshold in TAR_SOURCES:
        if prefix + source in present:
            d = np.array([r[prefix + source] for r in rows], np.float64)
            out[key] = 100.0 * (np.isfinite(d) & (d <= threshold))
    if hits is not None and prefix + "rank1" in hits:
        out["rank1"] = 100.0 * np.asarray(hits[prefix + "rank1"], np.float64)
    return out


def compare(a, b, groups):
    """{key: {"mean", "ci"}} of a - b for each key of both per-face dicts, paired on the same faces."""
    out = {}
    for key in a:
        if key in b:
            mean, ci = mean_interval(a[key] - b[key], groups)  # NaN where either is left out
            out[key] = {"mean": mean, "ci": ci}
    return out


def describe(labels, n):
    """The resampling's record: over people when `labels` (one identity per face) is given, else faces."""
    by_people = labels is not None
    return {"resampled": "people" if by_people else "faces",
            "people": len(set(labels)) if by_people else None, "faces": n,
            "method": "percentile bootstrap, scipy.stats.bootstrap", "confidence": CONFIDENCE,
            "resamples": RESAMPLES, "seed": SEED}


def summary(rows, labels=None, hits=None):
    """summary.json's "intervals": the means' intervals (SR and bicubic) and SR minus bicubic."""
    groups = np.asarray(labels) if labels is not None else np.arange(len(rows))
    sr, bicubic = per_face(rows, hits), per_face(rows, hits, BICUBIC_PREFIX)
    means = {}
    for prefix, values in (("", sr), (BICUBIC_PREFIX, bicubic)):
        for key, v in values.items():
            means[prefix + key] = mean_interval(v, groups)[1]
    return {**describe(labels, len(rows)), "means": means, "sr_minus_bicubic": compare(sr, bicubic, groups)}


def _span(ci, fmt, sign=""):
    return "n/a" if ci is None else f"[{ci[0]:{sign}{fmt}}, {ci[1]:{sign}{fmt}}]"


def line(intervals):
    """The printed line's interval part: each figure's SR and bicubic interval and SR's gain with its own."""
    if not intervals:
        return ""
    over = (f"{intervals['people']} people" if intervals["resampled"] == "people"
            else f"{intervals['faces']} faces")
    parts = []
    for key, label, unit, fmt in LINE_FIGURES:
        gain = intervals["sr_minus_bicubic"].get(key)
        if gain is None or gain["mean"] is None:
            continue
        means = intervals["means"]
        parts.append(f"{label} {_span(means.get(key), fmt)} (bicubic {_span(means.get(BICUBIC_PREFIX + key), fmt)}; "
                     f"SR-bicubic {gain['mean']:+{fmt}} {_span(gain['ci'], fmt, '+')}{unit})")
    return f" | {CONFIDENCE:.0%} intervals, bootstrap over {over}: " + ", ".join(parts) if parts else ""
