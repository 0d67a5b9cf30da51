"""Training data: augmentation, LR, Canny targets, resume, seeding, framing."""
import dataclasses
import os
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.augment import augment, augment_decisions  # noqa: E402
from data.canny import adaptive_thresholds, canny_targets, gradient_magnitude  # noqa: E402
from data.images import prepare_hr, read_image  # noqa: E402
from data.pipeline import DataConfig, TrainData, load_eval_set, read_partition_file  # noqa: E402

# -- helpers -------------------------------------------------------------------

def drawn_image(rng, height, width):
    """uint8 RGB image with sharp shapes (edges at every scale) and mild noise."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rng.integers(0, 256, 3)
    for _ in range(4):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x0, y0), (x0 + width // 3, y0 + height // 3), color, -1)
        else:
            cv2.circle(image, (x0, y0), max(2, min(height, width) // 4), color, -1)
    noise = rng.integers(-6, 7, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def write_images(folder, count, height=40, width=40, seed=0, names=None):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        name = names[i] if names else f"{i:03d}.png"
        path = os.path.join(folder, name)
        # PNG is lossless; cv2 writes BGR, so flip the RGB array.
        assert cv2.imwrite(path, drawn_image(rng, height, width)[:, :, ::-1])
        paths.append(path)
    return paths


def make_config(path, **kw):
    values = dict(train_path=path, dataset_mode="folder", load_size=32, crop_size=32, batch_size=2, seed=0,
                  flip=True, rotate=True, canny_low=50, canny_high=255, canny_adaptive=False, partition_file=None,
                  cache_memory_mb=4096)
    values.update(kw)
    return DataConfig(**values)


def batches(data, epoch=0, offset=0):
    return [{k: v.numpy() for k, v in b.items()} for b in data.dataset(epoch, offset)]


def elements(batch_list):
    keys = batch_list[0].keys()
    return {k: np.concatenate([b[k] for b in batch_list]) for k in keys}


def same_batches(a, b):
    return len(a) == len(b) and all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def variants(image):
    """The 8 images flip x rotation can make of `image`."""
    return [np.rot90(np.fliplr(image) if f else image, k) for f in (False, True) for k in range(4)]


def cv2_half(image):
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)


def gray(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def numpy_sobel_l1(gray_image):
    """|dx| + |dy| of 3x3 Sobel with replicated borders, in plain NumPy."""
    g = np.pad(gray_image.astype(np.float64), 1, mode="edge")
    dx = (g[:-2, 2:] + 2 * g[1:-1, 2:] + g[2:, 2:]) - (g[:-2, :-2] + 2 * g[1:-1, :-2] + g[2:, :-2])
    dy = (g[2:, :-2] + 2 * g[2:, 1:-1] + g[2:, 2:]) - (g[:-2, :-2] + 2 * g[:-2, 1:-1] + g[:-2, 2:])
    return np.abs(dx) + np.abs(dy)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("train"))
    write_images(root, 9, 40, 48, seed=1)
    return root


# -- augmentation -----------------------------------------------------------------

SEEDS = [tf.constant([i, 7], tf.int64) for i in range(64)]


def test_augment_is_exact_flip_and_rot90():
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 3)).astype(np.uint8)
    seen = set()
    for seed in SEEDS:
        out = augment(image, seed).numpy()
        d = {k: int(v) for k, v in augment_decisions(seed, 12, 12).items()}
        expected = np.rot90(np.fliplr(image) if d["flip"] else image, d["k"])
        assert np.array_equal(out, expected)
        assert any(np.array_equal(out, v) for v in variants(image))
        seen.add((d["flip"], d["k"]))
    assert seen == {(f, k) for f in (0, 1) for k in range(4)}


def test_augment_flags_disable_operations():
    image = np.random.default_rng(1).integers(0, 256, (12, 12, 3)).astype(np.uint8)
    rotations = [np.rot90(image, k) for k in range(4)]
    flips = [image, np.fliplr(image)]
    for seed in SEEDS[:24]:
        out = augment(image, seed, flip=False).numpy()
        assert any(np.array_equal(out, r) for r in rotations)
        out = augment(image, seed, rotate=False).numpy()
        assert any(np.array_equal(out, f) for f in flips)
        assert np.array_equal(augment(image, seed, flip=False, rotate=False).numpy(), image)


def test_augment_random_crop_is_stateless():
    image = np.random.default_rng(2).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    offsets = set()
    for seed in SEEDS[:24]:
        out = augment(image, seed, crop_size=12, flip=False, rotate=False).numpy()
        d = augment_decisions(seed, 20, 20, crop_size=12)
        top, left = int(d["top"]), int(d["left"])
        assert np.array_equal(out, image[top:top + 12, left:left + 12])
        assert np.array_equal(out, augment(image, seed, 12, False, False).numpy())  # same seed, same crop
        offsets.add((top, left))
    assert len(offsets) > 10


def test_pipeline_hr_is_the_prepared_image(folder):
    files = sorted(os.listdir(folder))
    prepared = [prepare_hr(read_image(os.path.join(folder, f)), 32, 32) for f in files]
    data = TrainData(make_config(folder, flip=False, rotate=False, batch_size=1))
    hr = elements(batches(data))["hr"]
    order = data.permutation(0, len(files))
    assert len(hr) == len(files)
    for i, image in enumerate(hr):
        assert image.dtype == np.float32
        assert np.array_equal(image, prepared[order[i]])

    augmented = elements(batches(TrainData(make_config(folder, batch_size=1)), epoch=3))["hr"]
    order = data.permutation(3, len(files))
    for i, image in enumerate(augmented):
        assert any(np.array_equal(image, v) for v in variants(prepared[order[i]]))


# -- LR and Canny targets -------------------------------------------------------------

def test_pipeline_lr_is_three_cv2_bilinear_steps(folder):
    data = TrainData(make_config(folder, load_size=40, crop_size=32, seed=5))
    got = elements(batches(data))
    assert got["lr"].shape == (8, 4, 4, 3) and got["hr"].shape == (8, 32, 32, 3)
    for hr, lr in zip(got["hr"], got["lr"]):
        x = hr.astype(np.uint8)
        for _ in range(3):
            x = cv2_half(x)
        assert np.array_equal(lr, x.astype(np.float32))


def test_pipeline_canny_matches_cv2(folder):
    got = elements(batches(TrainData(make_config(folder, load_size=40, crop_size=32, seed=2))))
    for i, hr in enumerate(got["hr"]):
        s128 = hr.astype(np.uint8)
        s64 = cv2_half(s128)
        s32 = cv2_half(s64)
        for key, image in (("canny_128", s128), ("canny_64", s64), ("canny_32", s32)):
            expected = cv2.Canny(gray(image), 50, 255).astype(np.float32)
            assert got[key][i].shape == image.shape[:2] + (1,)
            assert np.array_equal(got[key][i][:, :, 0], expected), key
    for key in ("canny_32", "canny_64", "canny_128"):
        assert got[key].max() == 255 and set(np.unique(got[key])) <= {0.0, 255.0}


def test_canny_targets_on_a_batch_and_an_image():
    rng = np.random.default_rng(3)
    batch = np.stack([drawn_image(rng, 32, 32) for _ in range(3)])
    c32, c64, c128 = canny_targets(batch.astype(np.float32))
    assert (c32.shape, c64.shape, c128.shape) == ((3, 8, 8, 1), (3, 16, 16, 1), (3, 32, 32, 1))
    for i, image in enumerate(batch):
        assert np.array_equal(c128[i, :, :, 0].numpy(), cv2.Canny(gray(image), 50, 255))
        assert np.array_equal(c64[i, :, :, 0].numpy(), cv2.Canny(gray(cv2_half(image)), 50, 255))
        assert np.array_equal(c32[i, :, :, 0].numpy(), cv2.Canny(gray(cv2_half(cv2_half(image))), 50, 255))
    single = canny_targets(batch[0])
    assert [m.shape for m in single] == [(8, 8, 1), (16, 16, 1), (32, 32, 1)]
    assert all(np.array_equal(a.numpy(), b[0].numpy()) for a, b in zip(single, (c32, c64, c128)))
    fixed = canny_targets(batch, low=100, high=200)[2]
    assert np.array_equal(fixed[0, :, :, 0].numpy(), cv2.Canny(gray(batch[0]), 100, 200))


def test_gray_is_made_from_rgb_not_bgr():
    # Orange square on blue: the two conversions give gray levels 123 vs 29 for
    # RGB2GRAY (a strong edge) but 76 vs 76 for BGR2GRAY applied to RGB (none).
    image = np.zeros((32, 32, 3), np.uint8)
    image[:] = (0, 0, 255)
    image[8:24, 8:24] = (255, 80, 0)
    rgb_edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 50, 255)
    bgr_edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 50, 255)
    assert rgb_edges.any() and not bgr_edges.any()
    edges = canny_targets(image)[2][:, :, 0].numpy()
    assert np.array_equal(edges, rgb_edges)


def test_adaptive_thresholds_follow_the_rule():
    rng = np.random.default_rng(4)
    for _ in range(3):
        g = gray(drawn_image(rng, 32, 32))
        magnitude = numpy_sobel_l1(g)
        m, sigma = magnitude.mean(), magnitude.std()
        low, high = adaptive_thresholds(g)
        assert low == pytest.approx(m + 1.2 * sigma, rel=1e-12)
        assert high == pytest.approx(m + 1.6 * sigma, rel=1e-12)
        low2, high2 = adaptive_thresholds(g, k_low=None)
        assert (low2, high2) == pytest.approx(((m + 1.6 * sigma) / 2, m + 1.6 * sigma), rel=1e-12)
        assert np.array_equal(gradient_magnitude(g), magnitude)


def test_adaptive_magnitude_is_the_one_cv2_canny_thresholds():
    # Every pixel cv2.Canny(g, t, t) marks has |dx| + |dy| > floor(t) on our
    # magnitude (borders included): the thresholds live on Canny's own scale.
    rng = np.random.default_rng(5)
    marked = 0
    for _ in range(4):
        g = gray(drawn_image(rng, 32, 32))
        g = cv2.add(g, rng.integers(0, 40, g.shape, dtype=np.uint8))
        magnitude = gradient_magnitude(g)
        for t in (20.5, 60, 150.3, 300):
            edges = cv2.Canny(g, t, t) > 0
            marked += edges.sum()
            assert not (edges & ~(magnitude > np.floor(t))).any()
    assert marked > 100


def test_adaptive_canny_targets(folder):
    got = elements(batches(TrainData(make_config(folder, canny_adaptive=True, batch_size=3))))
    fixed = elements(batches(TrainData(make_config(folder, batch_size=3))))
    assert np.array_equal(got["hr"], fixed["hr"])
    assert not np.array_equal(got["canny_128"], fixed["canny_128"])
    for i, hr in enumerate(got["hr"]):
        image = hr.astype(np.uint8)
        for key in ("canny_128", "canny_64", "canny_32"):
            g = gray(image)
            magnitude = numpy_sobel_l1(g)
            low = magnitude.mean() + 1.2 * magnitude.std()
            high = magnitude.mean() + 1.6 * magnitude.std()
            assert np.array_equal(got[key][i][:, :, 0], cv2.Canny(g, low, high)), key
            image = cv2_half(image)


# -- order, resume, seeding -----------------------------------------------------

@pytest.mark.parametrize("cache_mb", [4096, 0])
def test_resume_from_offset(folder, cache_mb):
    config = make_config(folder, load_size=40, crop_size=32, cache_memory_mb=cache_mb, seed=11)
    data = TrainData(config)
    assert data.cached == (cache_mb > 0)
    full = batches(data, epoch=2)
    assert len(full) == data.steps_per_epoch == 4  # 9 images, batch 2, remainder dropped
    assert same_batches(batches(data, epoch=2, offset=4), full[2:])
    assert same_batches(batches(TrainData(config), epoch=2, offset=6), full[3:])
    assert batches(data, epoch=2, offset=9) == []

    config = dataclasses.replace(config, batch_size=1)
    single = elements(batches(TrainData(config), epoch=2))
    resumed = elements(batches(TrainData(config), epoch=2, offset=3))
    assert all(np.array_equal(resumed[k], single[k][3:]) for k in single)


def test_seed_determinism(folder):
    a = batches(TrainData(make_config(folder, load_size=40, crop_size=32, seed=1)), epoch=1)
    b = batches(TrainData(make_config(folder, load_size=40, crop_size=32, seed=1)), epoch=1)
    uncached = batches(TrainData(make_config(folder, load_size=40, crop_size=32, seed=1, cache_memory_mb=0)), epoch=1)
    other_seed = batches(TrainData(make_config(folder, load_size=40, crop_size=32, seed=2)), epoch=1)
    data = TrainData(make_config(folder, load_size=40, crop_size=32, seed=1))
    other_epoch = batches(data, epoch=2)
    assert same_batches(a, b) and same_batches(a, uncached)
    assert not same_batches(a, other_seed) and not same_batches(a, other_epoch)
    tf.random.set_seed(1234)  # the global seed plays no part
    assert same_batches(batches(data, epoch=1), a)
    assert same_batches(batches(data, epoch=2), other_epoch)  # the cache is reused


def test_cache_is_built_once(folder):
    data = TrainData(make_config(folder))
    calls = []
    decode = data._decode_np

    def counting(path):
        calls.append(path)
        return decode(path)

    data._decode_np = counting
    batches(data, 0)
    batches(data, 1)
    assert len(calls) == 9


def test_unreadable_training_files_are_skipped(tmp_path):
    write_images(str(tmp_path), 5, 32, 32, seed=6)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cached = TrainData(make_config(str(tmp_path), batch_size=1, seed=3))
    assert cached.num_images == 6
    a = batches(cached, epoch=1)
    assert cached.num_images == 5 and len(a) == 5
    b = batches(TrainData(make_config(str(tmp_path), batch_size=1, seed=3, cache_memory_mb=0)), epoch=1)
    assert same_batches(a, b)


# -- file selection and errors ----------------------------------------------------

def test_partition_file_selects_training_files(tmp_path):
    names = [f"{i:06d}.png" for i in range(1, 7)]
    write_images(str(tmp_path / "img"), 6, 40, 32, seed=7, names=names)
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("000001.png 0\n000002.png 0\n000003.png 1\n000004.png 2\n000005.png 0\n\n")
    assert read_partition_file(str(partition))["000003.png"] == 1
    config = make_config(str(tmp_path / "img"), dataset_mode="celeba", partition_file=str(partition),
                   batch_size=1, flip=False, rotate=False)
    data = TrainData(config)
    assert [os.path.basename(f) for f in data.files] == ["000001.png", "000002.png", "000005.png"]
    assert data.num_images == 3 and data.steps_per_epoch == 3
    hr = elements(batches(data))["hr"]
    expected = [prepare_hr(read_image(f), 32, 32, "celeba") for f in data.files]
    assert sorted(x.tobytes() for x in hr.astype(np.uint8)) == sorted(x.tobytes() for x in expected)

    partition.write_text("000001.png\n")
    with pytest.raises(ValueError, match="list_eval_partition.txt:1"):
        TrainData(config)
    partition.write_text("000003.png 1\n")
    with pytest.raises(ValueError, match="partition 0"):
        TrainData(config)


def test_clear_errors(tmp_path):
    for path, pattern in ((tmp_path / "missing", "not found"), (tmp_path, "no images")):
        with pytest.raises(ValueError, match=pattern) as err:
            TrainData(make_config(str(path)))
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    (tmp_path / "notes.txt").write_text("no image here")
    with pytest.raises(ValueError, match="no images"):
        TrainData(make_config(str(tmp_path)))
    write_images(str(tmp_path), 1, 32, 32)
    with pytest.raises(ValueError, match="fewer than batchSize"):
        TrainData(make_config(str(tmp_path), batch_size=2))


# -- framing ------------------------------------------------------------------------

@pytest.mark.parametrize("mode,height,width", [("celeba", 218, 178), ("vggface2", 60, 80), ("folder", 50, 36)])
def test_framing_by_dataset_mode(tmp_path, mode, height, width):
    path = write_images(str(tmp_path), 2, height, width, seed=8)
    config = make_config(str(tmp_path), dataset_mode=mode, load_size=32, crop_size=32,
                   flip=False, rotate=False, batch_size=2)
    got = batches(TrainData(config))[0]
    expected = [prepare_hr(read_image(p), 32, 32, mode) for p in path]
    assert got["hr"].shape == (2, 32, 32, 3)
    assert sorted(x.tobytes() for x in got["hr"].astype(np.uint8)) == sorted(x.tobytes() for x in expected)

    config = dataclasses.replace(config, load_size=48, crop_size=40)
    got = batches(TrainData(config))[0]
    shapes = {k: v.shape for k, v in got.items()}
    assert shapes == {"lr": (2, 5, 5, 3), "hr": (2, 40, 40, 3), "canny_32": (2, 10, 10, 1),
                      "canny_64": (2, 20, 20, 1), "canny_128": (2, 40, 40, 1)}
    assert all(v.dtype == np.float32 for v in got.values())


def test_load_eval_set(tmp_path):
    paths = write_images(str(tmp_path / "sub"), 3, 60, 80, seed=9)
    (tmp_path / "bad.png").write_bytes(b"")
    config = make_config(str(tmp_path), dataset_mode="vggface2", load_size=40, crop_size=32)
    names, hr, lr = load_eval_set(config, str(tmp_path))
    assert names == ["sub/000.png", "sub/001.png", "sub/002.png"]
    assert hr.dtype == np.uint8 and hr.shape == (3, 32, 32, 3)
    assert lr.dtype == np.float32 and lr.shape == (3, 4, 4, 3)
    for p, h, small in zip(paths, hr, lr):
        assert np.array_equal(h, prepare_hr(read_image(p), 40, 32, "vggface2"))
        x = h
        for _ in range(3):
            x = cv2_half(x)
        assert np.array_equal(small, x.astype(np.float32))
    names, hr, lr = load_eval_set(config, str(tmp_path), limit=2)
    assert names == ["sub/000.png", "sub/001.png"] and len(hr) == len(lr) == 2
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="no images"):
        load_eval_set(config, str(tmp_path / "empty"))


def test_config_from_train_options():
    from options.train_options import TrainOptions

    opt = TrainOptions().parser().parse_args(["--train_path", "faces", "--dataset_mode", "celeba", "--batchSize", "4",
                                              "--no_flip", "--canny_adaptive", "--partition_file", "",
                                              "--cache_memory_mb", "0"])
    assert DataConfig.from_options(opt) == DataConfig(
        train_path="faces", dataset_mode="celeba", load_size=128, crop_size=128, batch_size=4, seed=0, flip=False,
        rotate=True, canny_low=50.0, canny_high=255.0, canny_adaptive=True, partition_file=None, cache_memory_mb=0.0)
