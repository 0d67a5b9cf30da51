"""Exporting the generator for deployment, and running the exported files.

Formats
- SavedModel (`export_saved_model`), weights frozen into the graph; three
  signatures, all fully convolutional ([N, h, w, 3] -> [N, 8h, 8w, 3]) on the
  [0, 255] scale:
    serving_default  float32 `lr` -> {"sr": float32}
    serving_uint8    uint8 `lr`   -> {"sr": float32, "sr_uint8": uint8 (rounded, clipped)}
    with_edges       float32 `lr` -> {"sr", "edge_32", "edge_64", "edge_128"}
- TFLite (`export_tflite`): input float32 [B, lr_size, lr_size, 3] with a
  fixed batch B (`batch_size`; a free batch dimension makes the converter
  compute the TRANSPOSE_CONV output shapes at run time, and XNNPACK then leaves
  those layers to TFLite's slow kernels), output float32 `sr` only (the edge
  heads are not needed to super-resolve). Quantisation modes:
    "float32"  no quantisation;
    "int8"     post-training quantisation calibrated on representative LR
               faces: int8 weights (per channel) and activations for every
               conv, transposed conv, add, sub and concat; the three
               AVERAGE_POOL_2D of the edge blocks stay float32 (XNNPACK has no
               int8 average pooling, and TFLite's own int8 kernel is slow).
               float32 I/O: the quantise/dequantise at the ends cost nothing
               measurable and the linear RGB output keeps its range.
    "dynamic"  int8 weights, activations quantised on the fly per batch (no
               calibration data); slower than "int8" and closer to float32;
    "float16"  float16 weights (dequantised to float32 at load on a CPU).
  The interpreter is ai_edge_litert's when installed, else tf.lite's
  (deprecated in TF 2.21 but present; same XNNPACK, same outputs and speed).

Loaders (`SavedModelInference`, `TFLiteInference`, `load_exported`) return
objects with deploy/inference.py's interface: `.name` and
`.predict(lr float32 [N, h, w, 3]) -> (sr float32 numpy, edges list or None)`.
"""
import os
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from data.constants import FRAME, LR_SIZE, SCALE
from data.degradation import degrade
from data.images import ImageReadError, list_images, prepare_hr, read_image
from models.checkpoint import CheckpointError, first_lines, load_generator

SAVED_MODEL_PB = "saved_model.pb"
TFLITE_EXTENSION = ".tflite"
QUANTIZATIONS = ("float32", "int8", "dynamic", "float16")
# Ops left float32 in the int8 model (see the module docstring).
INT8_FLOAT_OPS = ("AVERAGE_POOL_2D",)
# File names scripts/export.py writes inside its output folder.
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILES = {"float32": "generator_fp32.tflite", "int8": "generator_int8.tflite",
                "dynamic": "generator_dynamic.tflite", "float16": "generator_fp16.tflite"}


class ExportError(CheckpointError):
    """An export or an exported model that cannot be written or read; the message says why.

    A CheckpointError (so a ValueError), so that callers of
    deploy.inference.load_inference catch it like any unreadable weights.
    """


# -- SavedModel --------------------------------------------------------------
def _to_uint8(sr):
    return tf.cast(tf.clip_by_value(tf.round(sr), 0.0, 255.0), tf.uint8)


def frozen_forward(generator, spec):
    """The generator's forward pass (sr, edge_32, edge_64, edge_128) with its weights as constants.

    The int8 calibrator cannot run the READ_VARIABLE ops live variables leave;
    for the SavedModel, constants let oneDNN reorder each conv's weights once
    (scripts/benchmark.py's keras_frozen path measures it).
    """
    forward = tf.function(lambda lr: tuple(generator(lr, training=False)))
    return convert_variables_to_constants_v2(forward.get_concrete_function(spec))


def export_saved_model(generator, directory):
    """Write `generator` as a SavedModel with the signatures in the module docstring.

    The weights are frozen into the graph (see `frozen_forward`): a serving
    artefact, not a checkpoint to train on.
    """
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="lr")
    forward = frozen_forward(generator, spec)

    def run(lr):
        return tf.nest.flatten(forward(lr))

    @tf.function(input_signature=[spec])
    def serve_float(lr):
        return {"sr": run(lr)[0]}

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, tf.uint8, name="lr")])
    def serve_uint8(lr):
        sr = run(tf.cast(lr, tf.float32))[0]
        return {"sr": sr, "sr_uint8": _to_uint8(sr)}

    @tf.function(input_signature=[spec])
    def with_edges(lr):
        sr, e32, e64, e128 = run(lr)
        return {"sr": sr, "edge_32": e32, "edge_64": e64, "edge_128": e128}

    module = tf.Module()
    module.serve_float, module.serve_uint8, module.with_edges = serve_float, serve_uint8, with_edges
    try:
        tf.saved_model.save(module, directory, signatures={
            "serving_default": serve_float, "serving_uint8": serve_uint8, "with_edges": with_edges})
    except (tf.errors.OpError, OSError, ValueError) as err:
        raise ExportError(f"cannot write SavedModel {directory}: {first_lines(err, 1)}") from err
    return directory


class SavedModelInference:
    """A SavedModel written by `export_saved_model` (any folder with saved_model.pb)."""

    name = "savedmodel"
    precision = "float32"

    def __init__(self, path, lr_size=LR_SIZE, output_nc=3, edges=True):
        if not os.path.isfile(os.path.join(path, SAVED_MODEL_PB)):
            raise ExportError(f"{path} is not a SavedModel folder (no {SAVED_MODEL_PB})")
        try:
            self.model = tf.saved_model.load(path)
        except (tf.errors.OpError, OSError, ValueError) as err:
            raise ExportError(f"cannot load SavedModel {path}: {first_lines(err, 1)}") from err
        signatures = self.model.signatures
        if "serving_default" not in signatures:
            raise ExportError(f"SavedModel {path} has no serving_default signature")
        self.edges = edges and "with_edges" in signatures
        self._run = signatures["with_edges" if self.edges else "serving_default"]

    def predict(self, lr):
        out = self._run(lr=tf.convert_to_tensor(lr, tf.float32))
        edges = [out[k].numpy() for k in ("edge_32", "edge_64", "edge_128")] if self.edges else None
        return out["sr"].numpy(), edges


# -- TFLite ------------------------------------------------------------------
def representative_faces(folder, load_size=FRAME, flips=True):
    """float32 LR faces [N, s/8, s/8, 3] of a folder (test-time framing), with mirror images."""
    if not os.path.isdir(folder):
        raise ExportError(f"representative folder not found: {folder}")
    faces = []
    for path in list_images(folder):
        try:
            faces.append(prepare_hr(read_image(path), load_size, load_size))
        except ImageReadError:
            continue
    if not faces:
        raise ExportError(f"no readable images under representative folder {folder}")
    hr = np.stack(faces)
    if flips:
        hr = np.concatenate([hr, hr[:, :, ::-1]])
    return degrade(hr).numpy().astype(np.float32)


def _converter(generator, lr_size, batch_size=1):
    # Frozen weights: converting with live variables leaves READ_VARIABLE ops
    # that the int8 calibrator cannot run.
    spec = tf.TensorSpec([batch_size, lr_size, lr_size, 3], tf.float32, name="lr")
    forward = frozen_forward(generator, spec)

    @tf.function(input_signature=[spec])
    def serve(lr):
        return {"sr": tf.nest.flatten(forward(lr))[0]}

    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])


def tflite_bytes(generator, quantization="float32", representative=None, lr_size=LR_SIZE, batch_size=1,
                 float_ops=INT8_FLOAT_OPS):
    """The .tflite flatbuffer of `generator` with a quantisation of QUANTIZATIONS.

    The batch size is fixed (`batch_size`): with a free batch dimension the
    converter computes each TRANSPOSE_CONV's output shape at run time, and
    XNNPACK then leaves those layers to TFLite's slow reference kernels.
    For "int8", the op types in `float_ops` stay float32 (with quantise/
    dequantise around them); `float_ops=()` quantises every op.
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; expected one of {', '.join(QUANTIZATIONS)}")
    converter = _converter(generator, lr_size, batch_size)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        if quantization == "int8":
            return _int8_bytes(converter, representative, lr_size, batch_size, float_ops)
        return converter.convert()
    except ExportError:
        raise
    except Exception as err:  # the converter raises several unrelated types
        raise ExportError(f"TFLite conversion ({quantization}) failed: {first_lines(err, 1)}") from err


def _int8_bytes(converter, representative, lr_size, batch_size, float_ops):
    if representative is None or len(representative) == 0:
        raise ExportError("int8 quantisation needs representative LR faces")
    samples = np.asarray(representative, np.float32)
    if samples.shape[1:] != (lr_size, lr_size, 3):
        raise ExportError(f"representative faces must be [N, {lr_size}, {lr_size}, 3], got {list(samples.shape)}")

    def dataset():  # every sample once, in batches of the model's static size
        for start in range(0, len(samples), batch_size):
            yield [np.take(samples, range(start, start + batch_size), axis=0, mode="wrap")]

    converter.representative_dataset = dataset
    # Float I/O: the quantise/dequantise at the ends cost nothing measurable and
    # the linear RGB output keeps its full range.
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    if not float_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    # Calibrate, then quantise every op except `float_ops` (the experimental
    # debugger is TFLite's public route to a denylist).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its own tf.lite.Interpreter deprecation notice
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)))
        return debugger.get_nondebug_quantized_model()


def export_tflite(generator, path, quantization="float32", representative=None, lr_size=LR_SIZE, batch_size=1):
    """Write a .tflite file with a quantisation of QUANTIZATIONS ("int8" needs `representative`).

    `representative` is an array of float32 LR faces [N, lr_size, lr_size, 3]
    on [0, 255] (`representative_faces`). The file takes batches of
    `batch_size`; TFLiteInference runs any N in chunks of it.
    """
    content = tflite_bytes(generator, quantization, representative, lr_size, batch_size)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    return path


def _interpreter_class():
    """LiteRT's interpreter (ai_edge_litert) when installed, else tf.lite's (deprecated)."""
    try:  # optional: not in requirements.txt
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter


def make_interpreter(path=None, content=None, num_threads=None):
    interpreter_class = _interpreter_class()
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns on every construction that it is deprecated.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return interpreter_class(model_path=path, model_content=content, num_threads=num_threads)


class TFLiteInference:
    """A .tflite generator: sr output only (`edges` is None).

    Files from `export_tflite` have a fixed batch size B; `predict` runs any
    N in chunks of B (the last one padded). Runs on XNNPACK with `num_threads`
    (default: every core).
    """

    name = "tflite"

    def __init__(self, path=None, lr_size=LR_SIZE, output_nc=3, num_threads=None, content=None):
        if content is None:
            if not os.path.isfile(path):
                raise ExportError(f"no TFLite file at {path}")
            with open(path, "rb") as f:
                content = f.read()
        try:
            self.interpreter = make_interpreter(content=content, num_threads=num_threads or os.cpu_count())
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ExportError(f"cannot load TFLite model {path or '(bytes)'}: {first_lines(err, 1)}") from err
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["dtype"] != np.float32:
            raise ExportError(f"TFLite model {path or '(bytes)'} is not an exported generator "
                              f"(expected one float32 [N, h, w, 3] input)")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self.input_shape = tuple(int(d) for d in inputs[0]["shape"])
        self.batch_size = self.input_shape[0]
        self._allocated = self.input_shape
        quantised = any(t["dtype"] == np.int8 for t in self.interpreter.get_tensor_details())
        self.precision = "int8" if quantised else "float32"

    def predict(self, lr):
        lr = np.asarray(lr, np.float32)
        if lr.ndim != 4 or lr.shape[-1] != self.input_shape[-1] or 0 in lr.shape:
            raise ExportError(f"this TFLite model takes [N, h, w, {self.input_shape[-1]}] input, "
                              f"got {list(lr.shape)}")
        # The generator is fully convolutional, so another input size (test.py --real_world
        # feeds each face's own pixels, 16 px or more) runs once the input tensor is resized.
        b = self.batch_size if lr.shape[1:] == self.input_shape[1:] else len(lr)
        self._resize((b,) + lr.shape[1:])
        chunks = []
        for start in range(0, len(lr), b):
            chunk = lr[start:start + b]
            if len(chunk) < b:
                chunk = np.concatenate([chunk, np.zeros((b - len(chunk),) + chunk.shape[1:], np.float32)])
            self.interpreter.set_tensor(self._input, np.ascontiguousarray(chunk))
            self.interpreter.invoke()
            chunks.append(self.interpreter.get_tensor(self._output)[:len(lr) - start].copy())
        return np.concatenate(chunks), None

    def _resize(self, shape):
        if shape != self._allocated:
            self.interpreter.resize_tensor_input(self._input, list(shape))
            self.interpreter.allocate_tensors()
            self._allocated = shape


def load_exported(path, lr_size=LR_SIZE, output_nc=3):
    """A SavedModelInference or TFLiteInference for an exported file or folder."""
    backend = exported_backend(path)
    if backend is None:
        raise ExportError(f"{path} is neither a .tflite file nor a SavedModel folder")
    return backend(path, lr_size=lr_size, output_nc=output_nc)


def exported_backend(path):
    """TFLiteInference for a .tflite file, SavedModelInference for a SavedModel folder, else None.

    For deploy/inference.py's dispatch by file type.
    """
    if str(path).lower().endswith(TFLITE_EXTENSION) and not os.path.isdir(path):
        return TFLiteInference
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, SAVED_MODEL_PB)):
        return SavedModelInference
    return None


def export_files(weight_path, output, int8=False, representative_path=None, lr_size=LR_SIZE, batch_size=1,
                 saved_model=True):
    """scripts/export.py's files: the SavedModel (`saved_model`), the float32 TFLite model and, with `int8`,
    the int8 one calibrated on the faces of `representative_path`, into the folder `output`; returns their paths."""
    representative = None
    if int8:  # read the faces first: a bad folder fails before the slow steps
        representative = representative_faces(representative_path, load_size=SCALE * lr_size)
    generator = load_generator(weight_path, lr_size=lr_size)
    os.makedirs(output, exist_ok=True)
    written = []
    if saved_model:
        written.append(export_saved_model(generator, os.path.join(output, SAVED_MODEL_DIR)))
    written.append(export_tflite(generator, os.path.join(output, TFLITE_FILES["float32"]),
                                 lr_size=lr_size, batch_size=batch_size))
    if int8:
        written.append(export_tflite(generator, os.path.join(output, TFLITE_FILES["int8"]), "int8",
                                     representative=representative, lr_size=lr_size, batch_size=batch_size))
    return written
