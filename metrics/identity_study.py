"""Where identity is lost: the work of `python -m scripts.identity_study` (what it measures: that script's
docstring).
"""
import csv
import os

import cv2
import numpy as np
from scipy.stats import bootstrap

from data.constants import METRICS_CSV
from data.images import list_images, prepare_hr, read_image
from metrics import intervals
from metrics.face import FaceTools
from metrics.identification import IDENTITY_COLUMN
from metrics.identity import ALGO_THRESHOLDS
from utils import fail, output_stems

PROG = "identity_study"
FIGURE = "identity_worst.jpg"
WORST = 5
JPEG_QUALITY = 85
# BT.601 luma weights of R, G, B
LUMA = np.array([0.299, 0.587, 0.114])
# the README's headline TAR threshold
TAR_THRESHOLD = max(ALGO_THRESHOLDS)
PROPERTIES = ("yaw", "roll", "face size", "mouth open", "mouth width", "brightness", "contrast", "bicubic distance")


def face_properties(hr, tools):
    """{property: value} of an HR face (without "bicubic distance"), or None if dlib finds no face."""
    box = tools.detect_box(hr)
    if box is None:
        return None
    top, bottom, left, right = box
    shape = tools.predictor(hr, tools.dlib.rectangle(int(left), int(top), int(right), int(bottom)))
    pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
    right_eye, left_eye = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
    eyes = np.linalg.norm(left_eye - right_eye)
    to_jaw = np.linalg.norm(pts[[0, 16]] - pts[30], axis=1)
    dx, dy = left_eye - right_eye
    luma = hr[top:bottom, left:right] @ LUMA
    return {"yaw": abs(to_jaw[0] - to_jaw[1]) / to_jaw.sum(), "roll": abs(np.degrees(np.arctan2(dy, dx))),
            "face size": eyes, "mouth open": np.linalg.norm(pts[62] - pts[66]) / eyes,
            "mouth width": np.linalg.norm(pts[48] - pts[54]) / eyes,
            "brightness": float(luma.mean()), "contrast": float(luma.std())}


def read_faces(args):
    path = os.path.join(args.result, METRICS_CSV)
    if not os.path.isfile(path):
        fail(PROG, f"no metrics.csv in {args.result}: give a test.py output folder of HR mode")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "bicubic_dist_algo" not in rows[0]:
        fail(PROG, f"{path} has no dist_algo / bicubic_dist_algo: run test.py with the TAR algorithm on")
    files = list_images(args.test_path)
    source = dict(zip(output_stems(files, args.test_path), files))
    missing = [r["name"] for r in rows if r["name"] not in source]
    if missing:
        fail(PROG, f"{len(missing)} faces of metrics.csv (e.g. {missing[0]}) are not under --test_path "
                   f"{args.test_path}")
    return rows, source


def measure(rows, source, dataset_mode):
    """Per face with both distances: (name, identity, loss, {property: value}, SR distance, bicubic distance)."""
    tools = FaceTools(landmarks=68).check(descriptors=False)
    faces = []
    for r in rows:
        sr, bic = float(r["dist_algo"]), float(r["bicubic_dist_algo"])
        if not (np.isfinite(sr) and np.isfinite(bic)):
            continue
        hr = prepare_hr(read_image(source[r["name"]]), mode=dataset_mode)
        props = face_properties(hr, tools)
        if props is None:
            continue
        props["bicubic distance"] = bic
        faces.append((r["name"], r.get(IDENTITY_COLUMN, r["name"]), sr - bic, props, sr, bic))
    return faces


def _thirds_difference(s_top, c_top, s_low, c_low, axis=-1):
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample without faces of one subset: NaN
        return np.sum(s_top, axis) / np.sum(c_top, axis) - np.sum(s_low, axis) / np.sum(c_low, axis)


def top_minus_bottom(loss, groups, top, bottom):
    """Interval of mean loss over the `top` faces minus over the `bottom` ones, resampling groups.

    scipy.stats.bootstrap with paired per-group sums and counts of both subsets,
    as metrics.intervals.mean_interval does for one mean. NaN when some
    resamples hold no face of one subset (a handful of people only).
    """
    _, codes = np.unique(groups, return_inverse=True)
    arrays = []
    for subset in (top, bottom):
        arrays += [np.bincount(codes, weights=np.where(subset, loss, 0.0)), np.bincount(codes, weights=subset * 1.0)]
    result = bootstrap(arrays, _thirds_difference, n_resamples=intervals.RESAMPLES, vectorized=True, paired=True,
                       confidence_level=intervals.CONFIDENCE, method="percentile",
                       rng=np.random.default_rng(intervals.SEED))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def study(faces):
    """{property: {"thirds": [(low, high, n, % SR worse, mean loss, [ci])], "top_minus_bottom": [ci]}}."""
    loss = np.array([f[2] for f in faces])
    groups = np.array([f[1] for f in faces])
    out = {}
    for name in PROPERTIES:
        value = np.array([f[3][name] for f in faces])
        third = np.argsort(np.argsort(value, kind="stable")) * 3 // len(value)  # equal thirds by rank; ties by order
        rows = []
        for k in range(3):
            inside = third == k
            mean, ci = intervals.mean_interval(np.where(inside, loss, np.nan), groups)
            rows.append((float(value[inside].min()), float(value[inside].max()), int(inside.sum()),
                         float(100.0 * np.mean(loss[inside] > 0)), mean, ci))
        out[name] = {"thirds": rows, "top_minus_bottom": top_minus_bottom(loss, groups, third == 2, third == 0)}
    return out


def table(result, faces):
    loss = np.array([f[2] for f in faces])
    lines = [f"{len(faces)} faces of {len({f[1] for f in faces})} identities; SR worse than bicubic on "
             f"{100.0 * np.mean(loss > 0):.1f}%; loss = SR's dlib distance to the HR minus bicubic's (> 0: SR worse)",
             "", "| property | third | range | faces | SR worse | mean loss [95%] |", "|---|---|---|---|---|---|"]
    for name, entry in result.items():
        for k, (low, high, n, worse, mean, ci) in enumerate(entry["thirds"]):
            span = "n/a" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
            lines.append(f"| {name if k == 0 else ''} | {('low', 'mid', 'high')[k]} | {low:.3g}-{high:.3g} | {n} "
                         f"| {worse:.0f}% | {mean:+.3f} {span} |")
        ci = entry["top_minus_bottom"]
        lines.append(f"| | high - low | | | | [{ci[0]:+.3f}, {ci[1]:+.3f}] |")
    tar = f"TAR@{TAR_THRESHOLD:g}"
    lines += ["", f"| identity | faces | SR worse | mean loss | {tar} SR | {tar} bicubic |",
              "|---|---|---|---|---|---|"]
    for person, n, worse, mean, tar_sr, tar_bic in per_person(faces):
        lines.append(f"| {person} | {n} | {worse:.0f}% | {mean:+.3f} | {tar_sr:.0f}% | {tar_bic:.0f}% |")
    return "\n".join(lines)


def per_person(faces):
    """(identity, faces, % SR worse, mean loss, TAR of SR and of bicubic) per identity, worst mean loss first."""
    out = []
    for person in sorted({f[1] for f in faces}):
        mine = [f for f in faces if f[1] == person]
        loss = np.array([f[2] for f in mine])
        tars = [100.0 * np.mean([f[k] <= TAR_THRESHOLD for f in mine]) for k in (4, 5)]
        out.append((person, len(mine), 100.0 * np.mean(loss > 0), float(loss.mean()), *tars))
    return sorted(out, key=lambda r: -r[3])


def worst_figure(faces, result_dir, source, dataset_mode, path):
    """bicubic | SR | HR rows of the WORST faces with the largest loss, labelled with their distances."""
    tiles = []
    for name, _, _, _, sr_d, bic_d in sorted(faces, key=lambda f: -f[2])[:WORST]:
        images = [read_image(os.path.join(result_dir, name + suffix)) for suffix in ("_LR.png", "_SR.png")]
        row = np.concatenate(images + [prepare_hr(read_image(source[name]), mode=dataset_mode)], axis=1)
        label = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{name}  bicubic {bic_d:.2f}  SR {sr_d:.2f}", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        tiles += [label, row]
    header = np.full((18, tiles[1].shape[1], 3), 255, np.uint8)
    for k, title in enumerate(("bicubic", "SR", "HR")):
        cv2.putText(header, title, (k * tiles[1].shape[1] // 3 + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rgb = np.concatenate([header] + tiles, axis=0)
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        fail(PROG, f"cannot encode {path}")
    encoded.tofile(path)


def run(args):
    """The study scripts/identity_study.py's `args` ask for: the table printed, the figure written; returns it."""
    rows, source = read_faces(args)
    faces = measure(rows, source, args.dataset_mode)
    if len(faces) < 3:
        fail(PROG, f"{len(faces)} faces with both distances and a face found: too few to cut into thirds")
    result = study(faces)
    print(table(result, faces))
    figure = args.figure or os.path.join(args.result, FIGURE)
    worst_figure(faces, args.result, source, args.dataset_mode, figure)
    print(f"figure: {figure}")
    return result

