"""TFRecord shards and other filesystems: written bit-exact, read back as the folder's batches, on ram:// too."""
import dataclasses
import os
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from test_pipeline import batches, drawn_image, elements, make_config, same_batches, write_images  # noqa: E402

from data.images import decode_image, prepare_hr  # noqa: E402
from data.pipeline import TrainData  # noqa: E402
from data.storage import parse_record, plan_shards, write_shards  # noqa: E402


def two_files_mb(root):
    """A shard size that holds about two of the files under `root` (so a few files make several shards)."""
    sizes = [os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names]
    return 2 * float(np.median(sizes)) / 2 ** 20


def read_records(shards):
    records = tf.data.TFRecordDataset(shards).map(parse_record)
    return [(name.decode(), data) for name, data in records.as_numpy_iterator()]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    write_images(str(root / "b"), 5, 40, 48, seed=3)
    write_images(str(root / "a"), 4, 40, 48, seed=4)
    return str(root)


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("shards") / "faces")
    written, bad = write_shards(folder, prefix, two_files_mb(folder), progress=False)
    assert bad == [] and len(written) > 2
    return prefix


def test_plan_shards_cuts_at_the_size():
    mib = 2 ** 20
    assert plan_shards([40 * mib] * 5, 100) == [(0, 2), (2, 4), (4, 5)]
    assert plan_shards([150 * mib, 10 * mib, 10 * mib], 100) == [(0, 1), (1, 3)]  # a big file alone
    assert plan_shards([], 100) == []


def test_shards_hold_the_files_bit_exact(tmp_path):
    root = tmp_path / "faces"
    write_images(str(root / "p1"), 3, 40, 48, seed=5)
    assert cv2.imwrite(str(root / "p2.jpg"), drawn_image(np.random.default_rng(9), 50, 40))
    (root / "broken.png").write_bytes(b"not a png")
    prefix = str(tmp_path / "out" / "faces")
    written, bad = write_shards(str(root), prefix, two_files_mb(root), progress=False)

    assert [os.path.basename(p) for p in written] == [f"faces-{i:05d}-of-{len(written):05d}.tfrecord"
                                                      for i in range(len(written))]
    assert sorted(os.listdir(tmp_path / "out")) == [os.path.basename(p) for p in written]  # no temporary left
    assert len(written) >= 2 and [os.path.basename(p) for p, _ in bad] == ["broken.png"]
    expected = [(name, (root / name).read_bytes()) for name in ("p1/000.png", "p1/001.png", "p1/002.png", "p2.jpg")]
    assert read_records(written) == expected

    before = [open(p, "rb").read() for p in written]
    with pytest.raises(ValueError, match="exist"):
        write_shards(str(root), prefix, progress=False)
    assert [open(p, "rb").read() for p in written] == before


@pytest.mark.parametrize("epoch", [0, 3])
def test_shards_give_the_folder_batches(folder, shards, epoch):
    config = make_config(folder, load_size=40, crop_size=32, seed=7, batch_size=2)
    from_folder = batches(TrainData(config), epoch)
    sharded = TrainData(dataclasses.replace(config, train_path=shards + "-*.tfrecord"))
    assert sharded.num_images == 9 and sharded.files[0] == "a/000.png"
    assert same_batches(batches(sharded, epoch), from_folder)
    assert same_batches(batches(sharded, epoch, offset=4), from_folder[2:])


def test_uncached_shards_stream_is_seeded_and_resumes(folder, shards):
    config = make_config(shards + "-*.tfrecord", seed=2, batch_size=1, cache_memory_mb=0, flip=False, rotate=False)
    data = TrainData(config)
    assert not data.cached
    full = batches(data, 1)
    assert same_batches(batches(TrainData(config), 1), full)
    assert same_batches(batches(data, 1, offset=5), full[5:])
    assert not same_batches(batches(data, 2), full)
    # every face once per epoch, each the folder's face
    folder_hr = elements(batches(TrainData(dataclasses.replace(config, train_path=folder)), 1))["hr"]
    hr = elements(full)["hr"]
    assert sorted(x.tobytes() for x in hr) == sorted(x.tobytes() for x in folder_hr)


def test_shards_refuse_a_partition_file(shards, tmp_path):
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("a/000.png 0\n")
    with pytest.raises(ValueError, match="partition"):
        TrainData(make_config(shards + "-*.tfrecord", partition_file=str(partition)))
    with pytest.raises(ValueError, match="no shard file"):
        TrainData(make_config(str(tmp_path / "none-*.tfrecord")))


def test_ram_filesystem_end_to_end(folder):
    from scripts.make_shards import main

    ram = "ram://test_shards"
    for person in os.listdir(folder):
        tf.io.gfile.makedirs(f"{ram}/faces/{person}")
        for name in os.listdir(os.path.join(folder, person)):
            tf.io.gfile.copy(os.path.join(folder, person, name), f"{ram}/faces/{person}/{name}")
    written = main([f"{ram}/faces", f"{ram}/shards/faces", "--shard_mb", str(two_files_mb(folder))])
    assert all(p.startswith(f"{ram}/shards/faces-") for p in written) and len(written) > 2

    config = make_config(folder, load_size=40, crop_size=32, seed=4, batch_size=3)
    local = batches(TrainData(config), 1)
    for path in (f"{ram}/faces", f"{ram}/shards/faces-*.tfrecord"):
        assert same_batches(batches(TrainData(dataclasses.replace(config, train_path=path)), 1), local), path
    uncached = TrainData(dataclasses.replace(config, train_path=f"{ram}/faces", cache_memory_mb=0))
    assert same_batches(batches(uncached, 1), local)


def test_workers_read_their_own_shards(folder, shards):
    config = make_config(shards + "-*.tfrecord", seed=5, batch_size=2, cache_memory_mb=0, flip=False, rotate=False)
    data = TrainData(config, workers=2)
    assert data.by_shard and data.worker_shards(0) == data.shards[0::2]
    counts = [int(data.shard_counts[w::2].sum()) for w in range(2)]
    assert data.steps_per_epoch == min(counts)  # one image of each worker per global batch of 2
    faces = {}  # name -> framed face, from each worker's own shards
    for w in range(2):
        for shard in data.worker_shards(w):
            for name, raw in read_records([shard]):
                faces[name] = (w, prepare_hr(decode_image(raw), 32, 32))
    streams = [elements(list(data.dataset(1, worker=w, workers=2).as_numpy_iterator()))["hr"] for w in range(2)]
    for w, hr in enumerate(streams):
        assert len(hr) == data.steps_per_epoch
        owners = {owner for owner, face in faces.values()
                  for image in hr if np.array_equal(image, face)}
        assert owners == {w}
    resumed = elements(list(data.dataset(1, offset=2, worker=1, workers=2).as_numpy_iterator()))["hr"]
    assert np.array_equal(resumed, streams[1][1:])
    with pytest.raises(ValueError, match="opened for 2 workers, not 1"):
        data.dataset(0, worker=0, workers=1)
