"""Training batches (tf.data) and the validation set.

Training order, per epoch:
list files (once, in __init__) -> decode + frame (data.images.read_image and
prepare_hr inside a tf.numpy_function: the test path's exact numpy code, so a
training HR before augmentation is bit-identical to the test-time HR) ->
in-memory cache when it fits -> shuffle -> skip(offset) -> augment ->
degrade + Canny -> batch(drop_remainder) -> prefetch.

Determinism. Element i of epoch e is a pure function of (seed, e, i) and the
file list:
* the shuffle is a NumPy permutation of the file list drawn from
  SeedSequence([seed, e, 0]) (unreadable files then dropped), independent of
  TensorFlow's global seed and of anything that ran before;
* the augmentation seed of the element at position i is
  stateless_fold_in(key_e, i) with key_e from SeedSequence([seed, e, 1]).
So `dataset(e, offset=k)` yields exactly the elements k, k+1, ... of
`dataset(e)`: resuming after k samples (k a multiple of the batch size) gives
the same batches as the uninterrupted run. Cached and uncached runs give the
same elements.

Cache. When num_images * load_size**2 * 3 bytes fits in `cache_memory_mb`, the
framed uint8 load_size images are decoded once (first `dataset()` call, or
`warm_cache()`) into one NumPy array owned by this TrainData and reused by
every epoch; an epoch then reads rows in its shuffled order, and skip(offset)
costs nothing (an own array rather than tf.data's cache(): its memory is
exactly the estimate, the shuffle is an index permutation instead of an
N-element shuffle buffer, and the cache outlives each epoch's dataset by
construction). Otherwise the file list is shuffled and decoded every epoch;
skip(offset) then decodes (without augmenting) the skipped images.

Unreadable files are left out with a warning (logged once per file); element
positions count readable images only. `num_images` / `steps_per_epoch` count
every listed file until the cache has been built, after which they count the
readable ones; without a cache an epoch with unreadable files ends early.
"""
import logging
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from data.augment import augment
from data.canny import HIGH, LOW, canny_maps
from data.constants import SCALE
from data.degradation import degrade, pyramid
from data.images import IMAGE_EXTENSIONS, ImageReadError, list_images, prepare_hr, read_image

log = logging.getLogger(__name__)

DEFAULT_CACHE_MB = 4096
TRAIN_PARTITION = 0
_EVAL_CHUNK = 256


def read_partition_file(path):
    """{file name: partition} of CelebA's list_eval_partition.txt ("name.jpg 0")."""
    partitions = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise ValueError(f"cannot read partition file {path}: {err.strerror or err}") from err
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise ValueError(f"{path}:{number}: expected 'name partition', got {line.strip()!r}")
        partitions[fields[0]] = int(fields[1])
    return partitions


def list_image_files(root, what="image"):
    """`list_images(root)`, with a one-line ValueError when there is nothing to read."""
    if not os.path.isdir(root):
        raise ValueError(f"{what} folder not found: {root}")
    files = list_images(root)
    if not files:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) under {what} folder {root}")
    return files


def select_partition(files, partition_file, partition=TRAIN_PARTITION):
    """The files whose name is listed in `partition_file` with `partition`."""
    partitions = read_partition_file(partition_file)
    return [f for f in files if partitions.get(os.path.basename(f)) == partition]


def load_face(path, load_size, mode="folder"):
    """uint8 [load_size, load_size, 3] framed face of an image file (test-time framing)."""
    return prepare_hr(read_image(path), load_size, load_size, mode)


def _readable(image, ok):
    return ok


def _image(image, ok):
    return image


class TrainData:
    """Training set of one folder; `dataset(epoch, offset)` gives its batches.

    Reads from `opt`: train_path, dataset_mode ("folder"), load_size (128),
    crop_size (128), batchSize (1), seed (0), no_flip (False), no_rotate
    (False), canny_low (50), canny_high (255), canny_adaptive (False),
    partition_file (None: every file; else only names in partition 0),
    cache_memory_mb (4096; 0 disables the cache).
    """

    def __init__(self, opt):
        self.train_path = opt.train_path
        self.mode = getattr(opt, "dataset_mode", "folder") or "folder"
        self.load_size = int(getattr(opt, "load_size", 128))
        self.crop_size = int(getattr(opt, "crop_size", 128))
        self.batch_size = int(getattr(opt, "batchSize", 1))
        seed = getattr(opt, "seed", 0)
        self.seed = 0 if seed is None else int(seed)
        self.flip = not getattr(opt, "no_flip", False)
        self.rotate = not getattr(opt, "no_rotate", False)
        low = getattr(opt, "canny_low", None)
        high = getattr(opt, "canny_high", None)
        self.canny_low = LOW if low is None else float(low)
        self.canny_high = HIGH if high is None else float(high)
        self.canny_adaptive = bool(getattr(opt, "canny_adaptive", False))
        self.partition_file = getattr(opt, "partition_file", None) or None
        cache_mb = getattr(opt, "cache_memory_mb", None)
        self.cache_memory_mb = DEFAULT_CACHE_MB if cache_mb is None else float(cache_mb)

        if self.crop_size < SCALE or self.crop_size % SCALE:
            raise ValueError(f"crop_size must be a positive multiple of {SCALE}, got {self.crop_size}")
        if self.load_size < self.crop_size:
            raise ValueError(f"load_size ({self.load_size}) must be at least crop_size ({self.crop_size})")
        if self.batch_size < 1:
            raise ValueError(f"batchSize must be at least 1, got {self.batch_size}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")

        files = list_image_files(self.train_path, "training")
        if self.partition_file:
            files = select_partition(files, self.partition_file)
            if not files:
                raise ValueError(f"no image under {self.train_path} is listed in partition "
                                 f"{TRAIN_PARTITION} of {self.partition_file}")
        self.files = files
        self._check_batch(len(files))
        self.cache_bytes = len(files) * self.load_size ** 2 * 3
        self.cached = self.cache_bytes <= self.cache_memory_mb * 2 ** 20
        self._cache = None  # uint8 [num_files, L, L, 3] once built
        self._ok = None  # per file: readable (cache built)
        self._bad = set()

    # -- sizes --------------------------------------------------------------
    @property
    def num_images(self):
        return len(self.files) if self._ok is None else int(self._ok.sum())

    @property
    def unreadable(self):
        """Paths found unreadable so far (all of them once the cache is built)."""
        return sorted(self._bad)

    @property
    def steps_per_epoch(self):
        return self.num_images // self.batch_size

    def _check_batch(self, count):
        if count < self.batch_size:
            raise ValueError(f"{count} readable training image(s) under {self.train_path}, "
                             f"fewer than batchSize {self.batch_size}")

    # -- decoding -----------------------------------------------------------
    def _decode_np(self, path):
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            return load_face(path, self.load_size, self.mode), True
        except ImageReadError as err:
            if path not in self._bad:
                self._bad.add(path)
                log.warning("skipping unreadable training image %s: %s", path, err)
            return np.zeros((self.load_size, self.load_size, 3), np.uint8), False

    def _decode(self, path):
        image, ok = tf.numpy_function(self._decode_np, [path], [tf.uint8, tf.bool], stateful=False)
        image.set_shape([self.load_size, self.load_size, 3])
        ok.set_shape([])
        return image, ok

    def _decoded(self, files):
        """Dataset of (image, ok) for `files`, in order, decoded in parallel."""
        return tf.data.Dataset.from_tensor_slices(np.asarray(files, dtype=object).astype(str)).map(
            self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def warm_cache(self):
        """Decode every file into the in-memory cache (once; no-op when not cached)."""
        if not self.cached or self._cache is not None:
            return
        log.info("caching %d training images (%.0f MiB)", len(self.files), self.cache_bytes / 2 ** 20)
        cache = np.empty((len(self.files), self.load_size, self.load_size, 3), np.uint8)
        ok = np.zeros(len(self.files), bool)
        decoded = self._decoded(self.files).as_numpy_iterator()
        for i, (image, good) in enumerate(tqdm(decoded, total=len(self.files), desc="reading training images",
                                               unit="img", leave=False)):
            cache[i] = image
            ok[i] = good
        self._check_batch(int(ok.sum()))
        self._cache, self._ok = cache, ok

    def _row(self, index):
        return self._cache[index].copy()

    # -- per-epoch order and seeds -------------------------------------------
    def _epoch_key(self, epoch, stream):
        return np.random.SeedSequence([self.seed, epoch, stream]).generate_state(2, np.uint32).astype(np.int64)

    def permutation(self, epoch, count):
        """The epoch's shuffled order of `count` files (position -> file index)."""
        return np.random.default_rng(self._epoch_key(epoch, 0)).permutation(count)

    def _source(self, epoch, offset):
        """(position, uint8 load_size image) from element `offset` on, epoch order."""
        if self.cached:
            self.warm_cache()
            rows = self.permutation(epoch, len(self.files))
            rows = rows[self._ok[rows]]  # the same order as decoding the shuffled files
            positions = np.arange(len(rows), dtype=np.int64)
            ds = tf.data.Dataset.from_tensor_slices((positions[offset:], rows[offset:]))

            def fetch(position, row):
                image = tf.numpy_function(self._row, [row], tf.uint8, stateful=False)
                image.set_shape([self.load_size, self.load_size, 3])
                return position, image

            return ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        files = np.asarray(self.files, dtype=object)[self.permutation(epoch, len(self.files))]
        ds = self._decoded(list(files)).filter(_readable).map(_image)
        return ds.enumerate().skip(offset)

    def _element(self, key):
        crop = self.crop_size if self.load_size > self.crop_size else None

        def make(position, image):
            seed = tf.random.experimental.stateless_fold_in(key, position)
            hr = tf.cast(augment(image, seed, crop, self.flip, self.rotate), tf.float32)
            half, quarter, lr = pyramid(hr)
            c128, c64, c32 = canny_maps([hr, half, quarter], self.canny_low, self.canny_high,
                                        self.canny_adaptive)
            return {"lr": lr, "hr": hr, "canny_32": c32, "canny_64": c64, "canny_128": c128}

        return make

    def dataset(self, epoch, offset=0, worker=0, workers=1):
        """Batches of epoch `epoch` from element `offset` on (resume: offset = samples done).

        Each element is a dict of float32 tensors on [0, 255]: lr [B, s/8, s/8, 3],
        hr [B, s, s, 3], canny_32 [B, s/4, s/4, 1], canny_64 [B, s/2, s/2, 1],
        canny_128 [B, s, s, 1] (s = crop_size); the last partial batch is dropped.
        With `workers` > 1 (multi-worker training) the batches hold only this
        worker's share, B/workers images: slice `worker` of each batch of the
        one-worker dataset, so together the workers train on exactly its batches,
        and each augments only its own images.
        """
        epoch, offset = int(epoch), int(offset)
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        if offset < 0:
            raise ValueError(f"offset must be non-negative, got {offset}")
        if workers < 1 or not 0 <= worker < workers or self.batch_size % workers:
            raise ValueError(f"worker {worker} of {workers} cannot take an equal share of "
                             f"batchSize {self.batch_size}")
        key = tf.constant(self._epoch_key(epoch, 1))
        ds = self._source(epoch, offset)
        share = self.batch_size // workers
        if workers > 1:
            take = slice(worker * share, (worker + 1) * share)
            ds = ds.batch(self.batch_size, drop_remainder=True).map(lambda p, i: (p[take], i[take])).unbatch()
        ds = ds.map(self._element(key), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(share, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        return ds.with_options(options)


def load_eval_set(opt, path, limit=None):
    """Validation/test faces of a folder: (names, hr, lr).

    names: paths relative to `path` (sorted; '/' separators); hr: uint8
    [N, s, s, 3], test-time framing (`prepare_hr` with opt's load_size,
    crop_size, dataset_mode); lr: float32 [N, s/8, s/8, 3] = degrade(hr).
    Unreadable files are skipped (with a warning); `limit` keeps the first
    `limit` readable images. Raises ValueError when nothing is readable.
    """
    load_size = int(getattr(opt, "load_size", 128))
    crop_size = int(getattr(opt, "crop_size", 128))
    mode = getattr(opt, "dataset_mode", "folder") or "folder"
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    names, faces = [], []
    for file in list_image_files(path, "evaluation"):
        if limit is not None and len(faces) >= limit:
            break
        try:
            faces.append(prepare_hr(read_image(file), load_size, crop_size, mode))
        except ImageReadError as err:
            log.warning("skipping unreadable image %s: %s", file, err)
            continue
        names.append(os.path.relpath(file, path).replace(os.sep, "/"))
    if not faces:
        raise ValueError(f"no readable images under evaluation folder {path}")
    hr = np.stack(faces)
    lr = np.concatenate([degrade(hr[i:i + _EVAL_CHUNK]).numpy() for i in range(0, len(hr), _EVAL_CHUNK)])
    return names, hr, lr
