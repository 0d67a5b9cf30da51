"""Generator / discriminator sizes and weight loading.

The authors' G_weight.ckpt is not in the repository, so a TF1 checkpoint with
the released variable names is written here with tf.compat.v1.train.Saver and
the loaded generator is compared with the released graph written out in plain
tf.nn ops from the raw arrays.
"""
import shutil

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from deploy.inference import load_inference
from models import CheckpointError, Discriminator, build_generator, load_generator, save_generator

# The released graph, from the notes on the original code: (name, kernel shape).
CONVS = {
    "Conv1": (3, 3, 3, 512), "Step1_1": (3, 3, 512, 512), "Step1_2": (3, 3, 512, 512),
    "Step1_edge": (1, 1, 256, 1), "Step2_1": (3, 3, 512, 512), "Step2_2": (3, 3, 512, 256),
    "Step2_edge": (1, 1, 128, 1), "Step3_1": (3, 3, 256, 256), "Step3_2": (3, 3, 256, 128),
    "Step3_edge": (1, 1, 64, 1), "RGB": (1, 1, 128, 3),
}
# Transposed convs: TF1 kernel layout (h, w, out, in).
DECONVS = {"Step1_de": (4, 4, 256, 512), "Step2_de": (4, 4, 128, 256), "Step3_de": (4, 4, 64, 128)}


def released_arrays(seed=0):
    """Random weights of every released generator variable, He-scaled so activations stay O(100)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in CONVS.items():
        fan_in = shape[0] * shape[1] * shape[2]
        arrays[f"generator/{name}/w"] = rng.normal(0, np.sqrt(1.0 / fan_in), shape).astype(np.float32)
        arrays[f"generator/{name}/b"] = rng.normal(0, 1.0, shape[-1]).astype(np.float32)
    for name, shape in DECONVS.items():
        fan_in = shape[0] * shape[1] * shape[3] / 4  # stride 2: each output sees a quarter of the taps
        arrays[f"generator/{name}/conv2d_transpose/kernel"] = (
            rng.normal(0, np.sqrt(1.0 / fan_in), shape).astype(np.float32))
        arrays[f"generator/{name}/conv2d_transpose/bias"] = rng.normal(0, 1.0, shape[2]).astype(np.float32)
    arrays["generator/RGB/b"] += 128.0
    return arrays


def write_tf1_checkpoint(prefix, arrays):
    """Save `arrays` under their names with a TF1 Saver, as the released train.py did."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(name.replace("/", "__"), shape=value.shape,
                                                     dtype=tf.float32, initializer=tf.zeros_initializer())
                     for name, value in arrays.items()}
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for name, var in variables.items():
                var.load(arrays[name], sess)
            saver.save(sess, str(prefix), write_meta_graph=False)


def with_optimizer_state(arrays):
    """Adam slots and power accumulators a full TF1 training checkpoint carries."""
    extra = dict(arrays)
    for name in ("generator/Conv1/w", "generator/Step3_de/conv2d_transpose/kernel"):
        extra[name + "/Adam"] = np.ones_like(arrays[name])
        extra[name + "/Adam_1"] = np.full_like(arrays[name], 2.0)
    extra["beta1_power"] = np.float32(0.9).reshape(())
    extra["beta2_power"] = np.float32(0.999).reshape(())
    return extra


def released_forward(a, lr):
    """The released generator in tf.nn ops: (rgb, edge_32, edge_64, edge_128)."""
    def conv(x, name, relu=True):
        y = tf.nn.conv2d(x, a[f"generator/{name}/w"], 1, "SAME") + a[f"generator/{name}/b"]
        return tf.nn.relu(y) if relu else y

    def deconv(x, name):
        kernel = a[f"generator/{name}/conv2d_transpose/kernel"]
        n, h, w, _ = x.shape
        y = tf.nn.conv2d_transpose(x, kernel, [n, 2 * h, 2 * w, kernel.shape[2]], 2, "SAME")
        return tf.nn.relu(y + a[f"generator/{name}/conv2d_transpose/bias"])

    def box_sum(x, k):
        before = (k - 1) // 2  # TF's SAME: the odd extra pad goes after
        padded = tf.pad(x, [[0, 0], [before, k - 1 - before], [before, k - 1 - before], [0, 0]])
        return tf.nn.avg_pool2d(padded, k, 1, "VALID") * float(k * k)

    def edge_block(x, k, name):
        count = box_sum(tf.ones_like(x[..., :1]), k)  # unpadded elements under each window
        sub = tf.nn.relu(x - box_sum(x, k) / count)
        return tf.concat([x, sub], -1), conv(sub, name)

    x = conv(lr, "Conv1", relu=False)
    x = x + conv(conv(x, "Step1_1"), "Step1_2")
    up1 = deconv(x, "Step1_de")
    x, edge_32 = edge_block(up1, 5, "Step1_edge")
    x = up1 + conv(conv(x, "Step2_1"), "Step2_2")
    up2 = deconv(x, "Step2_de")
    x, edge_64 = edge_block(up2, 7, "Step2_edge")
    x = up2 + conv(conv(x, "Step3_1"), "Step3_2")
    up3 = deconv(x, "Step3_de")
    x, edge_128 = edge_block(up3, 10, "Step3_edge")
    return conv(x, "RGB", relu=False), edge_32, edge_64, edge_128


@pytest.fixture(scope="module")
def arrays():
    return released_arrays()


@pytest.fixture(scope="module")
def tf1_folder(tmp_path_factory, arrays):
    folder = tmp_path_factory.mktemp("tf1")
    write_tf1_checkpoint(folder / "G_weight.ckpt", with_optimizer_state(arrays))
    return folder


@pytest.fixture(scope="module")
def lr_batch():
    return np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def h5_generator(tmp_path_factory):
    """(generator.weights.h5, the random generator it holds)."""
    keras.utils.set_random_seed(3)
    generator = build_generator()
    path = tmp_path_factory.mktemp("h5") / "generator.weights.h5"
    save_generator(generator, str(path))
    return path, generator


def test_parameter_counts():
    assert build_generator().count_params() == 11_912_582
    d = Discriminator()
    d(tf.zeros([1, 128, 128, 3]))
    assert d.count_params() == 64_149_889


@pytest.mark.parametrize("by", ["prefix", "folder"])
def test_tf1_checkpoint_matches_the_released_graph(tf1_folder, arrays, lr_batch, by):
    path = tf1_folder / "G_weight.ckpt" if by == "prefix" else tf1_folder
    got = load_generator(str(path))(lr_batch)
    expected = released_forward(arrays, tf.constant(lr_batch))
    shapes = [(2, 128, 128, 3), (2, 32, 32, 1), (2, 64, 64, 1), (2, 128, 128, 1)]
    for g, e, shape in zip(got, expected, shapes):
        assert g.shape == shape
        assert np.abs(g.numpy() - e.numpy()).max() <= 1e-3
    sr = expected[0].numpy()
    assert sr.std() > 1.0 and np.abs(sr).max() < 1e4  # a real test: neither constant nor exploding
    assert all(e.numpy().max() > 0 for e in expected[1:])


def test_inference_wrapper_gives_the_generator_outputs(tf1_folder, arrays, lr_batch):
    model = load_inference(str(tf1_folder))
    sr, edges = model.predict(lr_batch)
    expected = released_forward(arrays, tf.constant(lr_batch))
    assert isinstance(sr, np.ndarray) and len(edges) == 3 and isinstance(model.name, str)
    for g, e in zip([sr] + edges, expected):
        assert np.abs(g - e.numpy()).max() <= 1e-3
    sr_one, _ = model.predict(lr_batch[:1, :8, :8])  # any batch and LR size, no retrace needed
    assert sr_one.shape == (1, 64, 64, 3)


def broken(arrays, kind):
    a = dict(arrays)
    if kind == "missing":
        del a["generator/Step2_edge/b"]
        return a, ["missing generator/Step2_edge/b"]
    if kind == "extra":
        a["generator/Step4_1/w"] = np.zeros((3, 3, 8, 8), np.float32)
        return a, ["unexpected generator/Step4_1/w"]
    if kind == "misshaped":
        a["generator/RGB/w"] = np.zeros((3, 3, 128, 3), np.float32)
        return a, ["generator/RGB/w (3, 3, 128, 3) (expected (1, 1, 128, 3))"]
    del a["generator/Conv1/b"]
    a["generator/Step4_1/w"] = np.zeros((1,), np.float32)
    a["generator/Step1_de/conv2d_transpose/kernel"] = np.zeros((4, 4, 512, 256), np.float32)
    return a, ["missing generator/Conv1/b", "unexpected generator/Step4_1/w",
               "generator/Step1_de/conv2d_transpose/kernel (4, 4, 512, 256)"]


@pytest.mark.parametrize("kind", ["missing", "extra", "misshaped", "all"])
def test_tf1_checkpoint_that_does_not_fit(tmp_path, arrays, kind):
    a, expected = broken(arrays, kind)
    prefix = tmp_path / "G_weight.ckpt"
    write_tf1_checkpoint(prefix, with_optimizer_state(a))
    with pytest.raises(CheckpointError) as err:
        load_generator(str(tmp_path))
    message = str(err.value)
    assert str(prefix) in message and "\n" not in message
    for part in expected:
        assert part in message
    assert "Adam" not in message and "beta1_power" not in message
    assert "Step3_1" not in message  # only the faulty variables are named


def test_h5_round_trip(h5_generator, tmp_path, lr_batch):
    path, original = h5_generator
    loaded = load_generator(str(path))
    copy = tmp_path / "copy" / "generator.weights.h5"
    save_generator(loaded, str(copy))
    reloaded = load_generator(str(copy.parent))
    for a, b, c in zip(original(lr_batch), loaded(lr_batch), reloaded(lr_batch)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_folder_with_both_generators_asks_which(h5_generator, tf1_folder, tmp_path, lr_batch):
    both = tmp_path / "CelebA"
    shutil.copytree(tf1_folder, both)
    shutil.copy(h5_generator[0], both)
    with pytest.raises(CheckpointError) as err:
        load_generator(str(both))
    message = str(err.value)
    assert str(both / "generator.weights.h5") in message and str(both / "G_weight.ckpt") in message
    ours = load_generator(str(both / "generator.weights.h5"))
    np.testing.assert_array_equal(ours(lr_batch)[0].numpy(), h5_generator[1](lr_batch)[0].numpy())
    load_generator(str(both / "G_weight.ckpt"))  # each one alone still loads


def test_float16_storage_loads_into_float32(h5_generator, tmp_path, lr_batch):
    path, original = h5_generator
    half = tmp_path / "half" / "generator.weights.h5"
    save_generator(original, str(half), storage="float16")
    stored = []
    with h5py.File(half, "r") as f:
        f.visititems(lambda _, obj: stored.append(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
    assert set(stored) == {np.dtype("float16")} and len(stored) == len(original.weights)
    assert half.stat().st_size < 0.55 * path.stat().st_size  # really half: no space left by the float32 arrays
    loaded = load_generator(str(half))
    for a, b in zip(original.weights, loaded.weights):
        assert b.dtype == "float32"
        np.testing.assert_array_equal(a.numpy().astype(np.float16).astype(np.float32), b.numpy())
    sr, sr_half = original(lr_batch)[0].numpy(), loaded(lr_batch)[0].numpy()
    assert np.abs(sr - sr_half).max() < 1e-2 * sr.std()
    with pytest.raises(ValueError, match="float16"):
        save_generator(original, str(tmp_path / "x.weights.h5"), storage="bfloat16")


def test_float16_storage_refuses_weights_it_would_turn_into_inf(h5_generator, tmp_path, lr_batch):
    generator = load_generator(str(h5_generator[0]))
    kernel = generator.weights[0]
    kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0] * len(kernel.shape)], [1e6]))
    path = tmp_path / "big" / "generator.weights.h5"
    with pytest.raises(ValueError, match="65504"):
        save_generator(generator, str(path), storage="float16")
    assert sorted(p.name for p in path.parent.iterdir()) == ["generator.weights.h5"]  # no half-written copy
    kept = load_generator(str(path))  # the float32 file stays, whole
    assert kept.weights[0].numpy().flat[0] == 1e6
    np.testing.assert_array_equal(kept(lr_batch)[0].numpy(), generator(lr_batch)[0].numpy())


def test_unreadable_h5_names_the_file(h5_generator, tmp_path):
    data = h5_generator[0].read_bytes()
    cases = {"truncated": data[:len(data) // 2], "garbage": np.random.default_rng(0).bytes(5000), "empty": b""}
    for i, (name, content) in enumerate(cases.items()):
        path = tmp_path / name / "generator.weights.h5"
        path.parent.mkdir()
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as err:
            load_generator(str(path if i % 2 else path.parent))  # the file itself or its folder
        assert str(path) in str(err.value) and "\n" not in str(err.value), name


def test_h5_of_another_model_does_not_fit(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "generator.weights.h5"
    other.save_weights(str(path))
    with pytest.raises(CheckpointError, match="does not fit") as err:
        load_generator(str(path))
    assert str(path) in str(err.value) and "Conv1" in str(err.value) and "\n" not in str(err.value)


def test_missing_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_generator(str(tmp_path / "nowhere" / "G_weight.ckpt"))
    with pytest.raises(CheckpointError, match="no checkpoint found in"):
        load_generator(str(tmp_path))
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_generator(str(tmp_path / "notes.txt"))
