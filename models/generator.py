"""EIPNet generator: 16x16 face -> 128x128 face, with three edge blocks.

Layer names follow the released TF1 graph (`Conv1`, `Step1_1`, ...,
`Step3_edge`, `RGB`) so that the authors' `G_weight.ckpt` maps onto them by
name (see models/checkpoint.py). Pixels are on the [0, 255] scale in and out;
the output is linear, as in the released code.
"""
import contextlib

import keras
import tensorflow as tf
from keras import layers

from data.constants import LR_SIZE

# Average-pool kernel of the edge block after each 2x upsampling (paper 3.1).
EDGE_POOL_SIZES = (5, 7, 10)
# --mixed_precision's Keras policy (GPUs with float16 tensor cores).
MIXED_POLICY = "mixed_float16"


@contextlib.contextmanager
def dtype_policy(name=None):
    """Layers made inside take the Keras dtype policy `name` (None: leave it as it is).

    Keras reads the global policy when a layer is made, so it is set only for
    that long: nothing else in the process changes precision.
    """
    previous = keras.mixed_precision.global_policy()
    if name:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _conv(filters, kernel, name, activation="relu", dtype=None):
    return layers.Conv2D(filters, kernel, padding="same", activation=activation,
                         kernel_initializer="glorot_uniform", name=name, dtype=dtype)


def _deconv(filters, name):
    return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="relu",
                                  kernel_initializer="glorot_uniform", name=name)


class EdgeBlock(layers.Layer):
    """Edge block (paper Fig. 3): high-pass features joined to the trunk.

    sub = ReLU(x - avgpool_k(x)) is concatenated to x; a 1x1 conv squeezes
    sub to the one-channel edge map that the edge loss L_e compares with Canny.
    Keras' SAME average pooling divides by the unpadded count, as TF1's did.
    """

    def __init__(self, pool_size, conv_name, **kwargs):
        super().__init__(**kwargs)
        self.pool = layers.AveragePooling2D(pool_size, strides=1, padding="same")
        # float32 even under a mixed precision policy: the outputs feed float32 losses
        self.edge = _conv(1, 1, conv_name, dtype="float32")

    def call(self, x):
        sub = tf.nn.relu(x - self.pool(x))
        return tf.concat([x, sub], axis=-1), self.edge(sub)


class Generator(keras.Model):
    """Returns (sr, edge_32, edge_64, edge_128) for an LR batch [N, h, w, 3]."""

    def __init__(self, output_nc=3, **kwargs):
        super().__init__(**kwargs)
        self.output_nc = output_nc
        self.conv1 = _conv(512, 3, "Conv1", activation=None)
        self.step1_1 = _conv(512, 3, "Step1_1")
        self.step1_2 = _conv(512, 3, "Step1_2")
        self.step1_de = _deconv(256, "Step1_de")
        self.edge1 = EdgeBlock(EDGE_POOL_SIZES[0], "Step1_edge", name="edge_block1")
        self.step2_1 = _conv(512, 3, "Step2_1")
        self.step2_2 = _conv(256, 3, "Step2_2")
        self.step2_de = _deconv(128, "Step2_de")
        self.edge2 = EdgeBlock(EDGE_POOL_SIZES[1], "Step2_edge", name="edge_block2")
        self.step3_1 = _conv(256, 3, "Step3_1")
        self.step3_2 = _conv(128, 3, "Step3_2")
        self.step3_de = _deconv(64, "Step3_de")
        self.edge3 = EdgeBlock(EDGE_POOL_SIZES[2], "Step3_edge", name="edge_block3")
        self.rgb = _conv(output_nc, 1, "RGB", activation=None, dtype="float32")  # float32: see EdgeBlock

    def call(self, lr):
        x = self.conv1(lr)
        x = x + self.step1_2(self.step1_1(x))
        up1 = self.step1_de(x)
        x, edge_32 = self.edge1(up1)
        x = up1 + self.step2_2(self.step2_1(x))
        up2 = self.step2_de(x)
        x, edge_64 = self.edge2(up2)
        x = up2 + self.step3_2(self.step3_1(x))
        up3 = self.step3_de(x)
        x, edge_128 = self.edge3(up3)
        return self.rgb(x), edge_32, edge_64, edge_128


def build_generator(lr_size=LR_SIZE, output_nc=3, policy=None):
    """A generator with its variables created (weights can then be loaded).

    `policy`: a Keras dtype policy such as MIXED_POLICY; the weights stay float32 under any.
    """
    with dtype_policy(policy):
        g = Generator(output_nc=output_nc)
    g(tf.zeros([1, lr_size, lr_size, 3]))
    return g
