"""`test.py --int8`: the int8 TFLite generator of a checkpoint, exported on first use and cached.

The model is deploy.export's int8 post-training quantisation (average pools
float32), calibrated on the repository's sample training faces
(CALIBRATION_FACES, plus mirror images, as `python -m scripts.export --int8`).
The cache file is named by a SHA-256 of everything the export depends on: the
bytes of the weight files, the bytes of the calibration faces, the LR size, the
fixed batch size and the TensorFlow version. Changed weights give another name,
so a stale model is never used.

Where: `$XDG_CACHE_HOME/eipnet-tf2/int8/` (default `~/.cache/...`), not beside
the weights: their folder may be read-only or under version control (the
bundled checkpoint/CelebA and checkpoint/CelebA-real), and a run writes into no folder it did not create.
The content key makes the location irrelevant to staleness.
"""
import glob
import hashlib
import os

import tensorflow as tf

from data.constants import LR_SIZE, SCALE
from data.images import list_images
from deploy.export import ExportError, TFLiteInference, exported_backend, representative_faces, tflite_bytes
from models.checkpoint import CheckpointError, load_generator, resolve_weights
from utils import atomic_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALIBRATION_FACES = os.path.join(ROOT, "datasets", "train")
CACHE_SUBDIR = os.path.join("eipnet-tf2", "int8")
# CPU flags (Linux /proc/cpuinfo) of the int8 dot-product instructions XNNPACK's
# int8 kernels gain from; without them int8 is barely faster than float32 (docs/benchmarks.md).
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, CACHE_SUBDIR)


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags, or None where /proc/cpuinfo cannot tell (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def lacks_vnni(cpuinfo="/proc/cpuinfo"):
    """True when the CPU has none of VNNI_FLAGS (False when unknown: no warning without evidence)."""
    flags = cpu_flags(cpuinfo)
    return flags is not None and not flags & set(VNNI_FLAGS)


def weight_files(path):
    """The files holding the generator weights `path` names (a .h5 file, or a checkpoint's index and shards)."""
    kind, resolved = resolve_weights(path)
    if kind == "h5":
        return [resolved]
    return [resolved + ".index"] + sorted(glob.glob(glob.escape(resolved) + ".data-*"))


def cache_key(files, calibration_files, lr_size, batch_size):
    digest = hashlib.sha256()
    for group in (files, calibration_files):
        digest.update(f"{len(group)}\n".encode())
        for path in group:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    digest.update(f"lr{lr_size} b{batch_size} tf{tf.__version__}".encode())
    return digest.hexdigest()


def int8_inference(weight_path, lr_size=LR_SIZE, batch_size=1, calibration=CALIBRATION_FACES, log=None):
    """A TFLiteInference of the int8 model of `weight_path`, exported now unless cached.

    `log(message)` hears where the model comes from. Raises CheckpointError
    (ExportError) for unreadable weights, an exported model, or a failed export.
    """
    if exported_backend(weight_path):
        raise ExportError(f"--int8 quantises Keras weights; {weight_path} is an exported model already "
                          f"(run it without --int8)")
    files = weight_files(weight_path)
    calibration_files = list_images(calibration) if os.path.isdir(calibration) else []
    key = cache_key(files, calibration_files, lr_size, batch_size)
    path = os.path.join(cache_dir(), f"generator_int8_lr{lr_size}_b{batch_size}_{key[:20]}.tflite")
    if os.path.isfile(path):
        try:
            model = TFLiteInference(path)
        except ExportError:  # a damaged cache file of ours: export again
            pass
        else:
            if log:
                log(f"int8 model: {path} (cached)")
            return model
    if log:
        log(f"int8 model: exporting {weight_path} (first use of these weights), calibrated on "
            f"{calibration} -> {path}")
    generator = load_generator(weight_path, lr_size=lr_size)
    faces = representative_faces(calibration, load_size=SCALE * lr_size)
    content = tflite_bytes(generator, "int8", faces, lr_size=lr_size, batch_size=batch_size)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a run killed mid-write leaves no truncated model
            f.write(content)
    except OSError as err:
        raise CheckpointError(f"cannot write the int8 model cache {path}: {err.strerror or err}") from err
    return TFLiteInference(path)
