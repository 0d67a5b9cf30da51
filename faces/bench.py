"""How much the real-photo path helps, on group photos with a known truth: the work of
`python -m scripts.real_world_bench` (what each column means: that script's docstring).
"""
import math
import os
import platform
import subprocess
import time

import cv2
import numpy as np
from tqdm import tqdm

from data.constants import CELEBA_CROP, CELEBA_SIZE, FRAME
from data.degradation import add_noise, jpeg_roundtrip
from data.images import list_images, read_image
from deploy.inference import load_inference
from faces import align, paste, photo as ph
from utils import fail


def cpu_label():
    """'model, flags of note' from lscpu (tables are labelled with the CPU they were measured on)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    model = fields.get("Model name", "unknown CPU").strip()
    flags = fields.get("Flags", "").split()
    notes = [n for n in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if n in flags]
    return f"{model} ({', '.join(notes) or 'no AVX2'}), {os.cpu_count()} logical CPUs"


def group_photos(paths, count, cols, rows, seed):
    """[(original uint8 photo, [(left, top) of each tile])]: enough photos for `count` faces."""
    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    per_photo = cols * rows
    photos, tiles = [], []
    for path in order:
        image = read_image(path)
        if image.shape[:2] != CELEBA_SIZE:
            continue
        tiles.append(image)
        if len(tiles) == per_photo:
            photos.append(tiles)
            tiles = []
        if len(photos) * per_photo >= count:
            break
    if not photos:
        fail("real_world_bench", f"fewer than {per_photo} 178x218 images under the folder")
    th, tw = CELEBA_SIZE
    out = []
    for tiles in photos:
        photo = np.zeros((rows * th, cols * tw, 3), np.uint8)
        origins = []
        for i, tile in enumerate(tiles):
            r, c = divmod(i, cols)
            photo[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
            origins.append((c * tw, r * th))
        out.append((photo, origins))
    return out


def true_matrix(origin, factor):
    """2x3 map shrunk-photo pixel -> the 128 frame of the tile at `origin` (its 178x178 crop)."""
    left, top = origin[0], origin[1] + (CELEBA_SIZE[0] - CELEBA_CROP) // 2
    k = FRAME / CELEBA_CROP
    # photo x -> original X = f x + (f - 1) / 2 -> frame (X - left + 0.5) k - 0.5
    return np.array([[factor * k, 0, ((factor - 1) / 2 - left + 0.5) * k - 0.5],
                     [0, factor * k, ((factor - 1) / 2 - top + 0.5) * k - 0.5]])


def region_psnr(a, b, region):
    diff = a[region].astype(np.float64) - b[region].astype(np.float64)
    mse = float((diff ** 2).mean())
    return 10 * math.log10(255.0 ** 2 / mse) if mse > 0 else float("inf")


def frame_centre(matrix):
    inv = align.invert(matrix)
    c = (FRAME - 1) / 2
    return inv[:, :2] @ [c, c] + inv[:, 2]


def shrunk_photo(original, factor, args, index):
    """The photo the real-photo path is given: `original` (cropped to a multiple of `factor`) shrunk
    `factor` times with INTER_AREA, then given --noise_sigma noise (drawn from --seed, the photo's
    `index` and the factor) and saved as JPEG at --jpeg_quality and read back, as a compressed photo
    arrives."""
    h, w = original.shape[0] // factor, original.shape[1] // factor
    small = cv2.resize(original[:h * factor, :w * factor], (w, h), interpolation=cv2.INTER_AREA)
    if args.noise_sigma:
        small = add_noise(small, args.noise_sigma, [args.seed, index, factor])
    return small if args.jpeg_quality is None else jpeg_roundtrip(small, args.jpeg_quality)


def input_label(args):
    """Which input the benchmark measures, e.g. 'INTER_AREA shrink, noise 3, JPEG 60'."""
    parts = ["INTER_AREA shrink"]
    if args.noise_sigma:
        parts.append(f"noise {args.noise_sigma:g}")
    if args.jpeg_quality is not None:
        parts.append(f"JPEG {args.jpeg_quality}")
    if args.match_sigma is not None:
        parts.append(f"--match_sigma {args.match_sigma:g}")
    return ", ".join(parts)


def measure(args, predict, photos, factor):
    gains, ceiling, colour_sr, colour_bic, photo_gains = [], [], [], [], []
    found = resolved = false = 0
    detect_seconds = 0.0
    options = {"max_frame": math.inf} if args.force_large else {}
    options["match_sigma"] = args.match_sigma
    for index, (original, origins) in enumerate(photos):
        h, w = (original.shape[0] // factor) * factor, (original.shape[1] // factor) * factor
        original = original[:h, :w]
        small = shrunk_photo(original, factor, args, index)
        result = ph.super_resolve_photo(small, predict, upscale=factor, **options)
        detect_seconds += result.seconds["detect"]
        bicubic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        truths = [true_matrix(o, factor) for o in origins]
        ideal = bicubic.copy()
        if args.force_large or align.frame_side(truths[0]) <= ph.MAX_FRAME:   # else the policy keeps bicubic
            _, ideal_sr, maps = ph.super_resolve_faces(small, truths, predict, match_sigma=result.match_sigma)
            for sr, image_map, m in zip(ideal_sr, maps, truths):
                paste.paste(ideal, sr, image_map, m, factor)
        photo_gains.append(region_psnr(result.composed, original, np.ones((h, w), bool))
                           - region_psnr(bicubic, original, np.ones((h, w), bool)))
        detected = [(frame_centre(m), face) for m, face in zip(result.matrices, result.faces)]
        false += sum(all(np.linalg.norm(centre - frame_centre(t)) >= align.frame_side(t) / 4 for t in truths)
                     for centre, _ in detected)
        for truth in truths:
            region = paste.paste(np.zeros((h, w, 3), np.uint8), np.zeros((8, 8, 3), np.uint8),
                              np.eye(2, 3), truth, factor) >= 0.5
            side = align.frame_side(truth)
            match = [face for centre, face in detected
                     if np.linalg.norm(centre - frame_centre(truth)) < side / 4]
            found += bool(match)
            resolved += any(face["status"] == ph.SUPER_RESOLVED for face in match)
            base = region_psnr(bicubic, original, region)
            gains.append(region_psnr(result.composed, original, region) - base)
            ceiling.append(region_psnr(ideal, original, region) - base)
            truth_colour = original[region].mean(0)
            colour_sr.append(np.abs(result.composed[region].mean(0) - truth_colour).mean())
            colour_bic.append(np.abs(bicubic[region].mean(0) - truth_colour).mean())
    n = len(gains)
    gains, ceiling = np.array(gains), np.array(ceiling)
    return {"factor": factor, "frame": 178 / factor, "faces": n, "found": 100 * found / n, "false": false,
            "resolved": 100 * resolved / n, "gain": gains.mean(), "worst": gains.min(),
            "improved": 100 * (gains > 0.05).mean(), "ceiling": ceiling.mean(),
            "ceiling_improved": 100 * (ceiling > 0.05).mean(), "colour": np.mean(colour_sr),
            "colour_bicubic": np.mean(colour_bic), "photo_gain": np.mean(photo_gains),
            "photo_worst": np.min(photo_gains), "detect_s": detect_seconds / len(photos)}


COLUMNS = (("factor", "shrink", "{:d}x"), ("frame", "frame px", "{:.1f}"), ("faces", "faces", "{:d}"),
           ("found", "found", "{:.1f}%"), ("false", "false faces", "{:d}"), ("resolved", "super-resolved", "{:.0f}%"),
           ("gain", "gain mean", "{:+.2f} dB"), ("worst", "gain worst", "{:+.2f} dB"),
           ("improved", "improved", "{:.0f}%"), ("ceiling", "ceiling mean", "{:+.2f} dB"),
           ("ceiling_improved", "ceiling improved", "{:.0f}%"), ("colour", "colour off", "{:.2f}"),
           ("colour_bicubic", "(bicubic)", "{:.2f}"), ("photo_gain", "photo gain", "{:+.3f} dB"),
           ("photo_worst", "photo worst", "{:+.3f} dB"), ("detect_s", "detect s/photo", "{:.2f}"))


def table(rows):
    lines = ["| " + " | ".join(c[1] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def run(args):
    """The benchmark scripts/real_world_bench.py's `args` ask for: prints a row per factor and the table;
    returns the rows."""
    model = load_inference(args.weight_path)
    photos = group_photos(list_images(args.faces), args.count, args.cols, args.rows, args.seed)
    rows = []
    start = time.perf_counter()
    for factor in tqdm(args.factors, desc="factors", unit="factor"):
        rows.append(measure(args, model.predict, photos, factor))
        tqdm.write(table(rows[-1:]).splitlines()[-1])
    print(f"real-photo path, {len(photos)} group photos of {args.cols}x{args.rows} faces from {args.faces}, "
          f"input: {input_label(args)}, "
          f"weights {args.weight_path}{', --force_large' if args.force_large else ''}; "
          f"{cpu_label()}; {time.perf_counter() - start:.0f} s")
    print(table(rows))
    return rows

