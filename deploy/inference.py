"""Running a trained generator for inference, whatever form its weights take.

`load_inference(path)` picks a backend by the kind of file at `path` and
returns an object with `.name` and `.predict(lr) -> (sr, edges)`: `lr` is a
float32 batch [N, h, w, 3] on [0, 255], `sr` a float32 numpy batch on the same
(unclipped) scale, `edges` the three edge maps as numpy arrays, or None for a
backend whose exported graph does not return them.
"""
import tensorflow as tf

from data.constants import LR_SIZE
from deploy.export import exported_backend
from models.checkpoint import CheckpointError, load_generator


class KerasInference:
    """The Keras generator with weights from any format `load_generator` reads."""

    name = "keras"

    def __init__(self, path, lr_size=LR_SIZE, output_nc=3, policy=None):
        self.generator = load_generator(path, lr_size=lr_size, output_nc=output_nc, policy=policy)
        self.precision = self.generator.dtype_policy.name
        # One trace serves every batch size and LR size.
        self._run = tf.function(lambda lr: self.generator(lr, training=False),
                                input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    def predict(self, lr):
        sr, *edges = self._run(tf.convert_to_tensor(lr, tf.float32))
        return sr.numpy(), [e.numpy() for e in edges]


def backend_for(path):
    """The inference class for the weights at `path`: an exported file's, else Keras'."""
    return exported_backend(path) or KerasInference


def load_inference(path, lr_size=LR_SIZE, output_nc=3, policy=None):
    """A ready inference object for the weights at `path`; raises CheckpointError.

    `policy` (a Keras dtype policy, e.g. mixed_float16) applies to Keras
    weights; an exported model runs in the precision it was exported with.
    """
    backend = backend_for(path)
    if backend is not KerasInference:
        if policy:
            raise CheckpointError(f"{path} is an exported model: it runs as exported, so a dtype policy "
                                  f"({policy}) cannot apply; give Keras weights or leave it out")
        return backend(path, lr_size=lr_size, output_nc=output_nc)
    return backend(path, lr_size=lr_size, output_nc=output_nc, policy=policy)
