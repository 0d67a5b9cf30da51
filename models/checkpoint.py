"""Loading generator weights from the formats users have.

- The project's own generator format: a Keras `.weights.h5` file
  (`generator.weights.h5`, written by train.py and `save_generator`).
- A training checkpoint of train.py (`tf.train.Checkpoint` prefix such as
  `.../ckpt/ckpt-1200`, or its folder): the generator is read out of it.
- The authors' TF1 name-based checkpoint `G_weight.ckpt` (its prefix, or the
  folder holding it): variables such as `generator/Conv1/w` are mapped onto the
  Keras layers by name.
"""
import os

import h5py
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf.trackable_object_graph_pb2 import TrackableObjectGraph

from data.constants import GENERATOR_FILE, LR_SIZE
from models.generator import build_generator
from utils import atomic_path

TF1_PREFIX = "G_weight.ckpt"
TRAIN_CKPT_DIR = "ckpt"

TF1_CONVS = ("Conv1", "Step1_1", "Step1_2", "Step1_edge", "Step2_1", "Step2_2", "Step2_edge",
             "Step3_1", "Step3_2", "Step3_edge", "RGB")
TF1_DECONVS = ("Step1_de", "Step2_de", "Step3_de")
# Optimizer slots the TF1 Saver may have stored beside the weights.
TF1_SLOT_SUFFIXES = ("/Adam", "/Adam_1", "/ExponentialMovingAverage")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit the generator."""


def tf1_variable_map(generator):
    """TF1 variable name -> Keras variable of `generator` (built)."""
    by_name = {}
    for layer in named_layers(generator):
        if layer.name in TF1_CONVS:
            by_name[f"generator/{layer.name}/w"] = layer.kernel
            by_name[f"generator/{layer.name}/b"] = layer.bias
        elif layer.name in TF1_DECONVS:
            by_name[f"generator/{layer.name}/conv2d_transpose/kernel"] = layer.kernel
            by_name[f"generator/{layer.name}/conv2d_transpose/bias"] = layer.bias
    return by_name


def named_layers(model):
    """Every layer inside `model`, nested ones too (not the model itself)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        yield layer


def _is_checkpoint_prefix(path):
    return tf.io.gfile.exists(path + ".index")


def resolve_weights(path):
    """(kind: "h5" or "prefix", concrete path) of the generator weights at `path`: a file, a checkpoint
    prefix or a folder holding one."""
    if os.path.isfile(path) and path.endswith(".h5"):
        return "h5", path
    if _is_checkpoint_prefix(path):
        return "prefix", path
    if os.path.isdir(path):
        h5, tf1 = os.path.join(path, GENERATOR_FILE), os.path.join(path, TF1_PREFIX)
        has_h5, has_tf1 = os.path.isfile(h5), _is_checkpoint_prefix(tf1)
        if has_h5 and has_tf1:
            # The authors' README unzips G_weight.ckpt into checkpoint/CelebA/, beside the bundled
            # generator: picking either silently would test weights the user did not mean.
            raise CheckpointError(f"{path} holds two generators, {GENERATOR_FILE} and the TF1 {TF1_PREFIX}: "
                                  f"pass one as the path ({h5} or {tf1})")
        if has_h5:
            return "h5", h5
        if has_tf1:
            return "prefix", tf1
        latest = tf.train.latest_checkpoint(os.path.join(path, TRAIN_CKPT_DIR)) or tf.train.latest_checkpoint(path)
        if latest:
            return "prefix", latest
        raise CheckpointError(
            f"no checkpoint found in {path} (looked for {GENERATOR_FILE}, {TF1_PREFIX}.index and a "
            f"training checkpoint in {TRAIN_CKPT_DIR}/)")
    if os.path.exists(path):
        raise CheckpointError(f"{path} is not a checkpoint (expected a .weights.h5 file, a checkpoint "
                              f"prefix with a .index file, or a folder holding one)")
    raise CheckpointError(f"no checkpoint at {path}")


def load_generator(path, lr_size=LR_SIZE, output_nc=3, policy=None):
    """A ready generator with the weights at `path` (any supported format), built under Keras `policy`."""
    kind, resolved = resolve_weights(path)
    generator = build_generator(lr_size, output_nc, policy)
    try:
        if kind == "h5":
            _load_h5(generator, resolved)
        elif _is_tf1_checkpoint(resolved):
            _load_tf1(generator, resolved)
        else:
            _load_training_checkpoint(generator, resolved)
    except CheckpointError:
        raise
    except (tf.errors.OpError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"cannot read checkpoint {resolved}: {first_lines(err)}") from err
    return generator


def first_lines(err, lines=2):
    """The gist of a library error as one line (Keras names the failing layer on its second line)."""
    parts = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(parts[:lines]) or type(err).__name__


def save_generator(generator, path, storage="float32"):
    """Write the project's generator format (a Keras .weights.h5 file).

    `storage="float16"` stores the arrays as float16: half the size (the bundled
    checkpoint ships so), and `load_generator` restores them into float32
    variables (Keras casts on assignment), off by at most half a float16 ulp.
    """
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage must be float32 or float16, got {storage!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    generator.save_weights(path)
    if storage == "float16":
        _store_float16(path)


def _store_float16(path):
    # Copied into a fresh file (HDF5 does not give back the space of deleted datasets) that
    # replaces the float32 one only once complete.
    with atomic_path(path) as tmp:
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            dst.attrs.update(src.attrs)

            def copy(name, obj):
                if isinstance(obj, h5py.Dataset):
                    data = obj[()]
                    if data.dtype == np.float32:
                        with np.errstate(over="ignore"):  # overflow is reported below, naming the array
                            half = data.astype(np.float16)
                        if not np.isfinite(half[np.isfinite(data)]).all():
                            raise ValueError(f"{name} has weights beyond float16's range (65504); "
                                             f"{path} is left stored as float32")
                        data = half
                    item = dst.create_dataset(name, data=data)
                else:
                    item = dst.require_group(name)
                item.attrs.update(obj.attrs)

            src.visititems(copy)


def _load_h5(generator, path):
    try:
        h5py.File(path, "r").close()
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: not a readable HDF5 file ({err})") from err
    try:
        generator.load_weights(path)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path} does not fit the generator: {first_lines(err)}") from err


def _is_tf1_checkpoint(prefix):
    # TF2 object-based checkpoints carry their object graph; TF1 Saver ones do not.
    names = [name for name, _ in tf.train.list_variables(prefix)]
    return "_CHECKPOINTABLE_OBJECT_GRAPH" not in names


def _load_tf1(generator, prefix):
    reader = tf.train.load_checkpoint(prefix)
    stored = {name: shape for name, shape in reader.get_variable_to_shape_map().items()
              if name.startswith("generator/") and not name.endswith(TF1_SLOT_SUFFIXES)}
    wanted = tf1_variable_map(generator)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    misshaped = [f"{name} {tuple(stored[name])} (expected {tuple(var.shape)})"
                 for name, var in sorted(wanted.items())
                 if name in stored and tuple(stored[name]) != tuple(var.shape)]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if extra:
        problems.append("unexpected " + ", ".join(extra))
    if misshaped:
        problems.append("wrong shape " + ", ".join(misshaped))
    if problems:
        raise CheckpointError(f"TF1 checkpoint {prefix} does not match the EIPNet generator: "
                              + "; ".join(problems))
    for name, var in wanted.items():
        var.assign(reader.get_tensor(name).astype(np.float32))


def _load_training_checkpoint(generator, prefix):
    # the root's children, not the variable names: train.py's generator variables are named by their
    # shorter path through the optimizer (g_optimizer/...)
    graph = TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    if not any(child.local_name == "generator" for child in graph.nodes[0].children):
        raise CheckpointError(f"checkpoint {prefix} holds no generator")
    root = tf.train.Checkpoint(generator=generator)
    status = root.read(prefix).expect_partial()  # the rest of a training run is not wanted here
    try:
        status.assert_existing_objects_matched()
    except AssertionError as err:
        raise CheckpointError(f"checkpoint {prefix} does not fit the generator: {first_lines(err)}") from err
