"""EIPNet discriminator (paper Table 2, released code's `di_conv*` layers).

Input: [N, 128, 128, 3] on [0, 255]; output: one logit per image. The stride-2
convs use VALID padding as the released code does (128 -> 63 -> 31 -> 15),
which fixes the flattened size, hence the dense layer, for a given crop size.
"""
import keras
from keras import layers


class Discriminator(keras.Model):
    # (name, filters, stride, padding, activation)
    CONVS = (
        ("di_conv1_1", 128, 1, "same", True),
        ("di_conv1_2", 128, 2, "valid", True),
        ("di_conv2_1", 256, 1, "same", True),
        ("di_conv2_2", 256, 2, "valid", True),
        ("di_conv3_1", 256, 1, "same", True),
        ("di_conv3_2", 512, 2, "valid", True),
        ("di_conv4_1", 512, 1, "same", False),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.convs = [layers.Conv2D(f, 3, strides=s, padding=p, name=n) for n, f, s, p, _ in self.CONVS]
        self.leaky = [act for *_, act in self.CONVS]
        self.flatten = layers.Flatten()
        self.fc1 = layers.Dense(512, name="di_fc1")
        self.fc2 = layers.Dense(1, name="di_fc2", dtype="float32")  # the logit stays float32 under mixed precision

    def call(self, x):
        for conv, leaky in zip(self.convs, self.leaky):
            x = conv(x)
            if leaky:
                x = keras.ops.leaky_relu(x, 0.2)
        x = keras.ops.leaky_relu(self.fc1(self.flatten(x)), 0.2)
        return self.fc2(x)
