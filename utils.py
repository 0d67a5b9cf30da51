"""The project's small helpers, one home each: messages, atomic writes, means, uint8, starting TensorFlow.

Imports no TensorFlow: entry points import this before their options set
CUDA_VISIBLE_DEVICES, then call `start_tensorflow`.
"""
import contextlib
import math
import os
import platform
import re
import sys
import tempfile

import cv2
import numpy as np

# What TensorFlow's C++ side prints while it loads and looks for GPUs on a machine with none:
# absl's notice, "Could not find cuda drivers", "failed call to cuInit: ... (303)", and oneDNN's
# "supports DT_UINT8 only on platforms with AVX-512" (printed at the first uint8 transpose, on
# CPUs with AVX-512 too). Users read it as a failure. Other lines printed then are passed on.
# Before absl::InitializeLog the time field is "00:00:<seconds since 1970>", hence \d+ for the seconds.
_STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] (failed call to cuInit: "
    r"|oneDNN supports DT_UINT8 only on platforms with AVX-512\. ).*)$")


def fail(prog, message, code=1):
    """One line on stderr and a non-zero exit, no traceback."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def warn(prog, message):
    print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; on success it replaces `path` in one step, else it goes.

    A run killed mid-write leaves `path` as it was, never truncated. `suffix` keeps an
    extension a writer insists on (Keras: ".weights.h5").
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def finite_mean(values):
    """(mean of the finite values, how many were inf or NaN and left out: a PSNR is inf for an SR equal to its HR)."""
    finite = [v for v in values if math.isfinite(v)]
    return (float(sum(finite) / len(finite)) if finite else float("nan")), len(values) - len(finite)


def mean_rows(rows, keys):
    """{key: mean of the finite values of rows[i][key]}: the mean row of per-image metric rows."""
    return {k: finite_mean([r[k] for r in rows])[0] for k in keys}


def to_uint8(image):
    """Round to the nearest integer and clip to [0, 255], as the released code saves images."""
    return np.clip(np.round(np.asarray(image, np.float64)), 0, 255).astype(np.uint8)


def usable_cores():
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_tensorflow():
    """Import TensorFlow and find its devices with their C++ start-up lines filtered out; returns the module.

    Entry points call it once their options have set CUDA_VISIBLE_DEVICES, before any module
    that imports TensorFlow. Our own messages, and anything else printed meanwhile, stay visible.
    It runs no op: MultiWorkerMirroredStrategy must configure the runtime before the first one.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's INFO/WARNING lines after start-up
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with startup_noise_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # CUDA's probe prints now, not at the first op
    return tf


def silence_onednn_uint8_notice(tf):
    """Run one uint8 transpose while start-up noise is filtered.

    oneDNN prints its uint8 notice once per process, at the first uint8 transpose (the training
    pipeline's flips), on AVX-512 CPUs too. train.py calls this once its strategy exists.
    """
    with startup_noise_filtered():
        tf.transpose(tf.zeros((1, 1), tf.uint8))


@contextlib.contextmanager
def startup_noise_filtered():
    """File descriptor 2 captured meanwhile, then passed on less TensorFlow's start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = startup_lines_kept(captured.read().decode(errors="replace"))
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def startup_lines_kept(text):
    """The lines of what was printed while TensorFlow started that are not its start-up noise."""
    return [line for line in text.splitlines() if not _STARTUP_NOISE.match(line)]


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
