"""Pictures for people: test.py's comparison figure, a real photo's results and before/after, training grids."""
import csv
import os

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils import write_png  # noqa: E402


def _edge_image(edge):
    return np.clip(np.asarray(edge, np.float32)[..., 0], 0, 255).astype(np.uint8)


def comparison_figure(samples, path, title=None):
    """One row per sample: LR | bicubic | SR | HR (if any) | edge maps 32/64/128 (if any).

    Each sample is a dict with uint8 `lr`, `bicubic`, `sr`, optional `hr`,
    `edges` (three [s, s, 1] maps on [0, 255], or None: a TFLite generator
    returns none) and `name`.
    """
    with_hr = any(s.get("hr") is not None for s in samples)
    with_edges = all(s.get("edges") is not None for s in samples)
    columns = (["LR", "bicubic", "SR"] + (["HR"] if with_hr else [])
               + (["edge 32", "edge 64", "edge 128"] if with_edges else []))
    fig, axes = plt.subplots(len(samples), len(columns), figsize=(1.8 * len(columns), 1.9 * len(samples)),
                             squeeze=False)
    for row, sample in enumerate(samples):
        images = [sample["lr"], sample["bicubic"], sample["sr"]]
        if with_hr:
            images.append(sample.get("hr") if sample.get("hr") is not None else np.zeros_like(sample["sr"]))
        if with_edges:
            images += [_edge_image(e) for e in sample["edges"]]
        for col, (ax, image) in enumerate(zip(axes[row], images)):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
        axes[row][0].set_ylabel(sample["name"], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def image_grid(rows):
    """Tile uint8 [H, W, 3] images row by row into one image (all the same size)."""
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def validation_curve(csv_path, path):
    """Validation PSNR and SSIM against the iteration, with bicubic's as a dashed line (train.py's validation.csv)."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    iters = [int(r["iteration"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, key, unit in ((axes[0], "psnr", " (dB)"), (axes[1], "ssim", "")):
        ax.plot(iters, [float(r[key]) for r in rows], marker="o", ms=3, lw=1.2, label="EIPNet")
        ax.axhline(float(rows[-1]["bicubic_" + key]), color="gray", ls="--", lw=1, label="bicubic")
        ax.set_xlabel("iteration")
        ax.set_ylabel(key.upper() + unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    last = rows[-1]
    fig.suptitle(f"validation at iteration {iters[-1]}: PSNR {float(last['psnr']):.2f} dB "
                 f"(bicubic {float(last['bicubic_psnr']):.2f}), SSIM {float(last['ssim']):.4f} "
                 f"(bicubic {float(last['bicubic_ssim']):.4f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def loss_curves(history, path):
    """Plot each logged loss term against the iteration (history: {name: [(iter, value)]})."""
    names = sorted(history)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.8 * len(names)), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], names):
        iters, values = zip(*history[name]) if history[name] else ((), ())
        ax.plot(iters, values, lw=1)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def before_after_figure(photo, composed, path, faces=(), max_side=1200, max_faces=6, title=None):
    """Input photo | composed output side by side (both shown at one size), and below
    the first `max_faces` faces (index, 16x16 input, SR) as input | SR pairs (test.py --real_world)."""
    h, w = composed.shape[:2]
    shrink = min(1.0, max_side / max(h, w))
    show_w, show_h = max(1, int(round(w * shrink))), max(1, int(round(h * shrink)))
    after = cv2.resize(composed, (show_w, show_h), interpolation=cv2.INTER_AREA) if shrink < 1 else composed
    before = cv2.resize(photo, (show_w, show_h), interpolation=cv2.INTER_NEAREST)
    faces = list(faces)[:max_faces]
    rows = 2 if faces else 1
    cols = max(2, 2 * len(faces))
    fig = plt.figure(figsize=(10, 5 * show_h / show_w + (2.2 if faces else 0) + 0.6))
    grid = fig.add_gridspec(rows, cols, height_ratios=[5 * show_h / show_w, 2.0][:rows])
    half = cols // 2
    for i, (image, label) in enumerate(((before, f"input {photo.shape[1]}x{photo.shape[0]}"),
                                        (after, f"output x{w // photo.shape[1]} ({w}x{h})"))):
        ax = fig.add_subplot(grid[0, i * half:(i + 1) * half])
        ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    for j, (k, lr, sr) in enumerate(faces):
        for i, (image, label) in enumerate(((lr, f"{k}: 16x16 input"), (sr, f"{k}: SR"))):
            ax = fig.add_subplot(grid[1, 2 * j + i])
            ax.imshow(image, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_photo_outputs(result, photo, out_dir, stem, figure=True):
    """Write <stem>_SR.png, <stem>_faces/<k>_SR.png (+ <k>_LR.png, the input shown bicubic) for each
    super-resolved face k (the index in result.faces, left to right, from 0) and
    <stem>_before_after.png into out_dir; returns the written paths."""
    written = []
    path = os.path.join(out_dir, stem + "_SR.png")
    write_png(path, result.composed)
    written.append(path)
    face_dir = os.path.join(out_dir, stem + "_faces")
    for k in sorted(result.sr):
        lr, sr = result.lr[k], result.sr[k]
        for name, image in ((f"{k}_SR.png", sr),
                            (f"{k}_LR.png", cv2.resize(lr, sr.shape[1::-1], interpolation=cv2.INTER_CUBIC))):
            write_png(os.path.join(face_dir, name), image)
            written.append(os.path.join(face_dir, name))
    if figure:
        path = os.path.join(out_dir, stem + "_before_after.png")
        before_after_figure(photo, result.composed, path,
                            faces=[(k, result.lr[k], result.sr[k]) for k in sorted(result.sr)])
        written.append(path)
    return written
