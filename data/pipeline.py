"""Training batches (tf.data) and the validation set.

Training order, per epoch:
list files (once, in __init__) -> decode + frame (data.images.decode_image and
prepare_hr inside a tf.numpy_function: the test path's exact numpy code, so a
training HR before augmentation is bit-identical to the test-time HR) ->
in-memory cache when it fits -> shuffle -> skip(offset) -> augment ->
degrade + Canny -> batch(drop_remainder) -> prefetch.
TFRecord shards (data.storage) stand for the file list by their records, in
order; they fill the cache like the files, so cached batches are the folder's.
Uncached shards are shuffled as whole shards and interleaved instead, and
under multi-worker training each worker then reads its own shards
(`TrainData.by_shard`): docs/training.md states what is deterministic then.

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
import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from data.augment import augment
from data.canny import canny_maps
from data.degradation import RealRecipe, degrade, pyramid, real_degrade
from data.images import IMAGE_EXTENSIONS, ImageReadError, decode_image, is_local, is_shard_path, prepare_hr, read_image
from data.storage import find_shards, interleaved_records, list_image_paths, numbered_records, read_bytes, shard_names

log = logging.getLogger(__name__)

TRAIN_PARTITION = 0
_EVAL_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the pipeline takes from train.py's options, built once by `from_options`.

    No defaults and no checks here: options/ holds both (crop_size a multiple
    of SCALE, load_size >= crop_size, batch_size >= 1, seed >= 0, ...).
    """
    train_path: str
    dataset_mode: str  # face framing, one of DATASET_MODES
    load_size: int
    crop_size: int
    batch_size: int
    seed: int
    flip: bool
    rotate: bool
    canny_low: float
    canny_high: float
    canny_adaptive: bool
    partition_file: str | None  # None: every file; else only the names in its partition 0
    cache_memory_mb: float  # 0 disables the cache
    real: RealRecipe | None = None  # the LR input's degradation: None, the paper's; else the real-input recipe

    @classmethod
    def from_options(cls, opt):
        """From TrainOptions().parse()."""
        return cls(train_path=opt.train_path, dataset_mode=opt.dataset_mode, load_size=opt.load_size,
                   crop_size=opt.crop_size, batch_size=opt.batchSize, seed=opt.seed, flip=not opt.no_flip,
                   rotate=not opt.no_rotate, canny_low=opt.canny_low, canny_high=opt.canny_high,
                   canny_adaptive=opt.canny_adaptive, partition_file=opt.partition_file or None,
                   cache_memory_mb=opt.cache_memory_mb, real=real_recipe(opt))


def real_recipe(opt):
    """The RealRecipe of train.py's --degradation_recipe real and --real_* options; None for the paper's."""
    if opt.degradation_recipe != "real":
        return None
    return RealRecipe(clean=opt.real_clean, blur=opt.real_blur, blur_sigma=tuple(opt.real_blur_sigma),
                      noise=opt.real_noise, noise_sigma=tuple(opt.real_noise_sigma), jpeg=opt.real_jpeg,
                      jpeg_quality=tuple(opt.real_jpeg_quality))


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
    """`list_image_paths(root)`, with a one-line ValueError when there is nothing to read."""
    if not (os.path.isdir(root) if is_local(root) else tf.io.gfile.isdir(root)):
        raise ValueError(f"{what} folder not found: {root}")
    files = list_image_paths(root)
    if not files:
        raise ValueError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) under {what} folder {root}")
    return files


def select_partition(files, partition_file, partition=TRAIN_PARTITION):
    """The files whose name is listed in `partition_file` with `partition`."""
    partitions = read_partition_file(partition_file)
    return [f for f in files if partitions.get(os.path.basename(f)) == partition]


def training_files(config):
    """The training images of `config`: every image of train_path, or those in partition 0."""
    files = list_image_files(config.train_path, "training")
    if config.partition_file:
        files = select_partition(files, config.partition_file)
        if not files:
            raise ValueError(f"no image under {config.train_path} is listed in partition "
                             f"{TRAIN_PARTITION} of {config.partition_file}")
    return files


def training_records(config):
    """(shard paths, records per shard, record names in order) of the shards `config.train_path` names."""
    if config.partition_file:
        raise ValueError("--partition_file selects the files of a folder; for shards, write shards of "
                         "the partition's files")
    shards = find_shards(config.train_path)
    names = shard_names(shards)
    return shards, np.array([len(n) for n in names], np.int64), [name for shard in names for name in shard]


def load_face(path, load_size, mode="folder"):
    """uint8 [load_size, load_size, 3] framed face of an image file on any filesystem (test-time framing)."""
    return frame_face(read_bytes(path), load_size, mode)


def frame_face(data, load_size, mode="folder"):
    """`load_face` of an image file's bytes."""
    return prepare_hr(decode_image(data), load_size, load_size, mode)


def epoch_key(seed, epoch, stream):
    """int64 [2] key of one epoch's random stream (0: the shuffle, 1: augmentation)."""
    return np.random.SeedSequence([seed, epoch, stream]).generate_state(2, np.uint32).astype(np.int64)


def element_maker(key, config):
    """(position, uint8 load_size image) -> the training element of that position, seeded by (key, position)."""
    crop = config.crop_size if config.load_size > config.crop_size else None

    def make(position, image):
        seed = tf.random.experimental.stateless_fold_in(key, position)
        hr = tf.cast(augment(image, seed, crop, config.flip, config.rotate), tf.float32)
        half, quarter, lr = pyramid(hr)
        if config.real is not None:
            lr = real_degrade(hr, tf.random.experimental.stateless_fold_in(seed, 1), config.real)
        c128, c64, c32 = canny_maps([hr, half, quarter], config.canny_low, config.canny_high,
                                    config.canny_adaptive)
        return {"lr": lr, "hr": hr, "canny_32": c32, "canny_64": c64, "canny_128": c128}

    return make


def check_position(epoch, offset, worker, workers, batch_size):
    if epoch < 0:
        raise ValueError(f"epoch must be non-negative, got {epoch}")
    if offset < 0:
        raise ValueError(f"offset must be non-negative, got {offset}")
    if workers < 1 or not 0 <= worker < workers or batch_size % workers:
        raise ValueError(f"worker {worker} of {workers} cannot take an equal share of batchSize {batch_size}")


def _readable(image, ok):
    return ok


def _image(image, ok):
    return image


class FaceStore:
    """The training faces of a folder or of shards, as a `DataConfig` describes them: listing, decoding, cache."""

    def __init__(self, config):
        self.config = config
        self.train_path = config.train_path
        self.load_size = config.load_size
        self.batch_size = config.batch_size
        self.shards = None  # shard paths when train_path names shards
        if is_shard_path(config.train_path):
            self.shards, self.shard_counts, self.files = training_records(config)  # files: the records' names
        else:
            self.files = training_files(config)
        self._check_batch(len(self.files))
        self.cache_bytes = len(self.files) * self.load_size ** 2 * 3
        self.cached = self.cache_bytes <= config.cache_memory_mb * 2 ** 20
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

    def _check_batch(self, count):
        if count < self.batch_size:
            raise ValueError(f"{count} readable training image(s) under {self.train_path}, "
                             f"fewer than batchSize {self.batch_size}")

    # -- decoding -----------------------------------------------------------
    def _decode_np(self, name, data=None):
        """(framed face, True) of a file (`name` its path) or a record's bytes; (zeros, False) if unreadable."""
        name = name.decode() if isinstance(name, bytes) else str(name)
        try:
            return frame_face(read_bytes(name) if data is None else data, self.load_size,
                              self.config.dataset_mode), True
        except ImageReadError as err:
            if name not in self._bad:
                self._bad.add(name)
                log.warning("skipping unreadable training image %s: %s", name, err)
            return np.zeros((self.load_size, self.load_size, 3), np.uint8), False

    def _decode(self, *path_or_record):
        image, ok = tf.numpy_function(self._decode_np, list(path_or_record), [tf.uint8, tf.bool], stateful=False)
        image.set_shape([self.load_size, self.load_size, 3])
        ok.set_shape([])
        return image, ok

    def _decoded(self, files):
        """Dataset of (image, ok) for `files`, in order, decoded in parallel."""
        return tf.data.Dataset.from_tensor_slices(np.asarray(files, dtype=object).astype(str)).map(
            self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _all_rows(self):
        """(row, image, ok) of every file or record, row its index in `files`, in any order."""
        if self.shards is None:
            return self._decoded(self.files).enumerate().map(lambda row, item: (row, *item))
        records = numbered_records(self.shards, self.shard_counts)
        return records.map(lambda row, name, data: (row, *self._decode(name, data)),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)

    def warm_cache(self):
        """Decode every file into the in-memory cache (once; no-op when not cached)."""
        if not self.cached or self._cache is not None:
            return
        log.info("caching %d training images (%.0f MiB)", len(self.files), self.cache_bytes / 2 ** 20)
        cache = np.empty((len(self.files), self.load_size, self.load_size, 3), np.uint8)
        ok = np.zeros(len(self.files), bool)
        for row, image, good in tqdm(self._all_rows().as_numpy_iterator(), total=len(self.files),
                                     desc="reading training images", unit="img", leave=False):
            cache[row] = image
            ok[row] = good
        self._check_batch(int(ok.sum()))
        self._cache, self._ok = cache, ok

    def _row(self, index):
        return self._cache[index].copy()

    def _fetch(self, position, row):
        image = tf.numpy_function(self._row, [row], tf.uint8, stateful=False)
        image.set_shape([self.load_size, self.load_size, 3])
        return position, image


class TrainData(FaceStore):
    """Training set of a `DataConfig`; `dataset(epoch, offset)` gives its batches (order: the module's doc)."""

    def __init__(self, config, workers=1):
        self.workers = workers  # the multi-worker input pipelines `dataset` will be asked for
        super().__init__(config)
        if self.by_shard and len(self.shards) < workers:
            raise ValueError(f"{len(self.shards)} shard(s) for {workers} workers: write smaller shards "
                             "(make_shards --shard_mb)")

    @property
    def by_shard(self):
        """Workers read disjoint shards (uncached shards, several workers) instead of slicing each batch."""
        return self.shards is not None and not self.cached and self.workers > 1

    def worker_shards(self, worker):
        """The shards worker `worker` reads when `by_shard`: every `workers`-th, from `worker` on."""
        return self.shards[worker::self.workers]

    @property
    def steps_per_epoch(self):
        if self.by_shard:  # every worker stops after the steps its smallest share of shards fills
            share = self.batch_size // self.workers
            return min(int(self.shard_counts[w::self.workers].sum()) for w in range(self.workers)) // share
        return self.num_images // self.batch_size

    # -- per-epoch order ------------------------------------------------------
    def permutation(self, epoch, count):
        """The epoch's shuffled order of `count` files (position -> file index)."""
        return np.random.default_rng(epoch_key(self.config.seed, epoch, 0)).permutation(count)

    def _source(self, epoch, offset):
        """(position, uint8 load_size image) from element `offset` on, epoch order."""
        if self.cached:
            self.warm_cache()
            rows = self.permutation(epoch, len(self.files))
            rows = rows[self._ok[rows]]  # the same order as decoding the shuffled files
            positions = np.arange(len(rows), dtype=np.int64)
            ds = tf.data.Dataset.from_tensor_slices((positions[offset:], rows[offset:]))
            return ds.map(self._fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if self.shards is None:
            files = np.asarray(self.files, dtype=object)[self.permutation(epoch, len(self.files))]
            ds = self._decoded(list(files))
        else:
            shards = np.asarray(self.shards)[self.permutation(epoch, len(self.shards))]
            ds = interleaved_records(shards).map(self._decode, num_parallel_calls=tf.data.AUTOTUNE,
                                           deterministic=True)
        return ds.filter(_readable).map(_image).enumerate().skip(offset)

    def _worker_source(self, epoch, offset, worker):
        """`_source` of one worker reading its own shards: (global position, image) from global `offset` on.

        Its k-th image fills place k % share of its share of global batch k // share,
        whose global position keys the augmentation, as if one worker read them all.
        """
        shards = self.worker_shards(worker)
        share = self.batch_size // self.workers
        shards = np.asarray(shards)[self.permutation(epoch, len(shards))]
        ds = interleaved_records(shards).map(self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(_readable).map(_image).enumerate().take(self.steps_per_epoch * share)
        return ds.skip(offset // self.workers).map(
            lambda k, image: ((k // share) * self.batch_size + worker * share + k % share, image))

    def dataset(self, epoch, offset=0, worker=0, workers=1):
        """Batches of epoch `epoch` from element `offset` on (resume: offset = samples done).

        Each element is a dict of float32 tensors on [0, 255]: lr [B, s/8, s/8, 3],
        hr [B, s, s, 3], canny_32 [B, s/4, s/4, 1], canny_64 [B, s/2, s/2, 1],
        canny_128 [B, s, s, 1] (s = crop_size); the last partial batch is dropped.
        With `workers` > 1 (multi-worker training) the batches hold only this
        worker's share, B/workers images: slice `worker` of each batch of the
        one-worker dataset, so together the workers train on exactly its batches,
        and each augments only its own images. Except when `by_shard`: then each
        worker reads only `worker_shards(worker)` (the batches differ from one
        worker's; the order is still a function of seed, epoch and the workers).
        """
        epoch, offset = int(epoch), int(offset)
        check_position(epoch, offset, worker, workers, self.batch_size)
        key = tf.constant(epoch_key(self.config.seed, epoch, 1))
        share = self.batch_size // workers
        if self.by_shard:
            if workers != self.workers:
                raise ValueError(f"this training set was opened for {self.workers} workers, not {workers}")
            ds = self._worker_source(epoch, offset, worker)
        else:
            ds = self._source(epoch, offset)
        if workers > 1 and not self.by_shard:
            take = slice(worker * share, (worker + 1) * share)
            ds = ds.batch(self.batch_size, drop_remainder=True).map(lambda p, i: (p[take], i[take])).unbatch()
        ds = ds.map(element_maker(key, self.config), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(share, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        return ds.with_options(options)


def load_eval_set(config, path, limit=None):
    """Validation/test faces of a folder: (names, hr, lr).

    names: paths relative to `path` (sorted; '/' separators); hr: uint8
    [N, s, s, 3], test-time framing (`prepare_hr` with the `DataConfig`'s
    load_size, crop_size, dataset_mode); lr: float32 [N, s/8, s/8, 3] = degrade(hr).
    Unreadable files are skipped (with a warning); `limit` keeps the first
    `limit` readable images. Raises ValueError when nothing is readable.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    names, faces = [], []
    for file in list_image_files(path, "evaluation"):
        if limit is not None and len(faces) >= limit:
            break
        try:
            faces.append(prepare_hr(read_image(file), config.load_size, config.crop_size, config.dataset_mode))
        except ImageReadError as err:
            log.warning("skipping unreadable image %s: %s", file, err)
            continue
        names.append(os.path.relpath(file, path).replace(os.sep, "/"))
    if not faces:
        raise ValueError(f"no readable images under evaluation folder {path}")
    hr = np.stack(faces)
    lr = np.concatenate([degrade(hr[i:i + _EVAL_CHUNK]).numpy() for i in range(0, len(hr), _EVAL_CHUNK)])
    return names, hr, lr
