"""Training images on any filesystem tf.io.gfile reads (local, gs://, s3://, ram://), and TFRecord shards of them.

A shard holds tf.train.Example records of two bytes features: "name" (the
image's path relative to the folder it came from, '/' separators) and "image"
(the file's bytes, unchanged: decoding a record is decoding the file).
`write_shards` writes the images of a folder in sorted order, so the records of
the shards, in sorted shard order, come in the order `list_images` gives the
folder's files.
"""
import fnmatch
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from data.constants import SHARD_MB, SHARD_SUFFIX
from data.images import IMAGE_EXTENSIONS, ImageReadError, decode_image, is_local, list_images

# shards read at once: an epoch's stream takes one record from each of this many shards in turn
SHARD_CYCLE = 16
_FEATURES = {"name": tf.io.FixedLenFeature([], tf.string), "image": tf.io.FixedLenFeature([], tf.string)}


def list_image_paths(root):
    """Image files under `root`, sorted: `list_images` locally, tf.io.gfile.walk on other filesystems."""
    if is_local(root):
        return list_images(root)
    found = []
    for folder, _, files in tf.io.gfile.walk(root):
        found += [f"{folder.rstrip('/')}/{name}" for name in files if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def read_bytes(path):
    """A file's bytes, from any filesystem; ImageReadError when it cannot be read."""
    try:
        if is_local(path):
            with open(path, "rb") as f:
                return f.read()
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except (OSError, tf.errors.OpError) as err:
        raise ImageReadError(f"cannot open: {getattr(err, 'strerror', None) or getattr(err, 'message', err)}") \
            from err


def find_shards(pattern):
    """The shard files a path or glob names, sorted; ValueError when there are none."""
    shards = sorted(tf.io.gfile.glob(pattern))
    if not shards:
        raise ValueError(f"no shard file matches {pattern}")
    return shards


def parse_record(record):
    """(name, encoded image) tensors of one serialized record."""
    features = tf.io.parse_single_example(record, _FEATURES)
    return features["name"], features["image"]


def shard_names(shards):
    """Per shard, the names of its records in order (reads every shard once, several at a time)."""
    def names(index, shard):
        return tf.data.TFRecordDataset(shard).map(lambda r: (index, parse_record(r)[0]))

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(shards)), shards)).interleave(
        names, cycle_length=min(len(shards), 64), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    found = [[] for _ in shards]
    for index, name in ds.as_numpy_iterator():  # each shard's records come in order
        found[index].append(name.decode())
    return found


def interleaved_records(shards):
    """(name, encoded image) of the records of `shards`: SHARD_CYCLE shards at a time, one record of each in turn.

    The order is a function of the shards' order and contents alone (a deterministic interleave).
    """
    return tf.data.Dataset.from_tensor_slices(list(shards)).interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(shards), SHARD_CYCLE), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).map(parse_record)


def numbered_records(shards, counts):
    """(row, name, encoded image) of every record, in any order: row counts records in shard order."""
    first_rows = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def rows(shard, first):
        return tf.data.TFRecordDataset(shard).map(parse_record).enumerate().map(
            lambda i, record: (first + i, *record))

    return tf.data.Dataset.from_tensor_slices((list(shards), first_rows)).interleave(
        rows, cycle_length=min(len(shards), SHARD_CYCLE), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False)


def shard_file(prefix, index, count):
    return f"{prefix}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def plan_shards(sizes, shard_mb):
    """Split files of these byte sizes, in order, into runs of about `shard_mb` MiB: [(start, stop)]."""
    limit = shard_mb * 2 ** 20
    runs, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if total and total + size > limit:
            runs.append((start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


def existing_shards(prefix):
    folder, base = os.path.split(prefix)
    pattern = f"{base}-*-of-*{SHARD_SUFFIX}"
    if not tf.io.gfile.exists(folder or "."):
        return []
    return sorted(n for n in tf.io.gfile.listdir(folder or ".") if fnmatch.fnmatch(n, pattern))


def write_shards(root, prefix, shard_mb=SHARD_MB, progress=True):
    """Write the readable images under `root` into shards `<prefix>-NNNNN-of-NNNNN.tfrecord`.

    Each shard is written to a temporary name and renamed when complete. Refuses
    (ValueError) when shards of `prefix` exist. Returns (shard paths, unreadable
    [(path, reason)]).
    """
    if existing_shards(prefix):
        raise ValueError(f"shards of {prefix} exist ({existing_shards(prefix)[0]}, ...): "
                         "remove them or give another prefix")
    files = list_image_paths(root)
    if not files:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) under {root}")
    sizes = [tf.io.gfile.stat(f).length for f in files]
    runs = plan_shards(sizes, shard_mb)
    folder = os.path.dirname(prefix)
    if folder:
        tf.io.gfile.makedirs(folder)
    written, bad = [], []
    bar = tqdm(total=len(files), desc="writing shards", unit="img", disable=not progress)
    for index, (start, stop) in enumerate(runs):
        path = shard_file(prefix, index, len(runs))
        partial = _partial_name(path)
        with tf.io.TFRecordWriter(partial) as writer:
            for file in files[start:stop]:
                try:
                    data = read_bytes(file)
                    decode_image(np.frombuffer(data, np.uint8))
                except ImageReadError as err:
                    bad.append((file, str(err)))
                else:
                    writer.write(_example(_relative(file, root), data))
                bar.update()
        tf.io.gfile.rename(partial, path)
        written.append(path)
    bar.close()
    return written, bad


def _partial_name(path):
    # not `path` + a suffix: ram:// takes a path that starts with another one's name for that file's folder
    folder, name = os.path.split(path)
    return f"{folder}/.{name}.partial" if folder else f".{name}.partial"


def _relative(path, root):
    return path[len(root.rstrip("/\\")):].lstrip("/\\").replace(os.sep, "/")


def _example(name, data):
    feature = {"name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
               "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
