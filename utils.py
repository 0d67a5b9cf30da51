"""Small helpers shared by train.py and test.py: writing images, naming outputs, the device line."""
import os
import platform

import cv2
import numpy as np


def write_png(path, rgb):
    """Lossless PNG of a uint8 RGB array; works for any unicode path."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OSError(f"cannot encode {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    encoded.tofile(path)


def output_stems(paths, root):
    """Output stem for each input, relative to `root`, unique and inside it.

    Sub-folders are mirrored; a stem shared by two files of one folder
    (a.jpg, a.png) keeps its extension. Uniqueness ignores case, since the
    output folder may live on a case-insensitive file system (x.jpg, x.JPG);
    any clash left gets a _2, _3 ... suffix.
    """
    rel = [os.path.relpath(p, root) for p in paths]
    stems = [os.path.splitext(r)[0] for r in rel]
    counts = {}
    for s in stems:
        counts[s.casefold()] = counts.get(s.casefold(), 0) + 1
    out, taken = [], set()
    for r, s in zip(rel, stems):
        if counts[s.casefold()] > 1:
            s += "_" + os.path.splitext(r)[1].lstrip(".")
        parts = [p for p in s.replace("\\", "/").split("/") if p not in ("", ".", "..")]
        stem = os.path.join(*parts) if parts else "image"
        unique, n = stem, 2
        while unique.casefold() in taken:
            unique, n = f"{stem}_{n}", n + 1
        taken.add(unique.casefold())
        out.append(unique)
    return out


def describe_device():
    """'GPU: <name> x N' or 'CPU: <model> (<n> threads)', for summaries and benchmarks."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        return f"GPU: {names[0]} x {len(names)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {model} ({os.cpu_count()} threads)"
