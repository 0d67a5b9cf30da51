"""test.py's per-image evaluation: the paper's metrics of every face, on every core, overlapped with the generator.

`FaceMetrics` computes a face's FR-PSNR/FR-SSIM (metrics.face), VIF
(metrics.vif) and identity distances (metrics.identity), and over a test set
their means and eq. 12's TARs. Keys written to metrics.csv / summary.json (TAR
in percent), each also with a ``bicubic_`` prefix for the bicubic baseline:
see SUMMARY_KEYS.

`Evaluation` runs them over a test set. FaceNet costs several times less per
face when many faces share a call, and dlib's face descriptors, single-threaded
(no BLAS in dlib-bin; batching them in dlib is no faster), cost most of the
rest; decoding, framing and the LR degradation are small. So a run:
- decodes the next chunk of files in a thread while the generator runs
  (`prefetched`);
- computes each face's metrics other than FaceNet's, and writes its PNGs, in
  `evaluate_face`, in one of `workers` spawned processes (TensorFlow is never
  forked, and the workers never import it); `workers=1` runs the same function
  in the caller, in order: the serial reference;
- embeds faces with FaceNet in the caller, FACENET_GROUP faces per call,
  grouped by their position among the evaluated faces, so every value is the
  same whatever `workers` and the generator's batch size are. Each HR face
  box, dlib descriptor and FaceNet embedding is computed once and serves both
  the SR and the bicubic row.
"""
import contextlib
import multiprocessing
import sys
import types
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

import numpy as np

from metrics.brisque import per_image as brisque_per_image
from metrics.face import FaceTools, fr_quality
from metrics.identity import (
    ALGO_THRESHOLDS,
    NET_THRESHOLDS,
    algo_distance,
    load_identity_network,
    net_distance,
    tar,
    tar_key,
)
from metrics.quality import psnr, quality, ssim
from metrics.vif import vif
from utils import write_png

# Faces per FaceNet call: 48 images, where the per-face time had levelled off.
FACENET_GROUP = 16
# Faces handed to the workers and not yet back, per worker: bounds memory when
# the generator outruns the metrics (a face's three images are 150 kB).
BACKLOG_PER_WORKER = 32

BICUBIC_PREFIX = "bicubic_"
FR_KEYS = ("fr_psnr", "fr_ssim", "fr_images")
VIF_KEYS = ("vif",)
TAR_ALGO_KEYS = tuple(tar_key("algo", t) for t in ALGO_THRESHOLDS)
TAR_NET_KEYS = tuple(tar_key("net", t) for t in NET_THRESHOLDS)
KEYS = FR_KEYS + VIF_KEYS + TAR_ALGO_KEYS + TAR_NET_KEYS
SUMMARY_KEYS = KEYS + tuple(BICUBIC_PREFIX + k for k in KEYS)


def _nanmean(values):
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return float(np.mean(v)) if v.size else float("nan")


class FaceMetrics:
    """Per-image FR-PSNR/FR-SSIM, VIF and identity distances; summary with TARs.

    Flags choose the metrics; missing dependencies of a requested metric raise
    EvalDependencyError (an ImportError, one-line message) here, at
    construction. ``face_tools`` / ``identity_network`` may be injected (tests,
    or to share loaded models); by default a FaceTools() (dlib HOG, upsample 1,
    5-point landmarks) and models.identity.load_identity_network(id_weights).
    """

    def __init__(self, fr=True, vif=True, tar_algo=True, tar_net=True, id_weights=None,
                 face_tools=None, identity_network=None):
        self.fr, self.vif, self.tar_algo, self.tar_net = bool(fr), bool(vif), bool(tar_algo), bool(tar_net)
        self.face_tools = None
        self.identity_network = None
        if self.fr or self.tar_algo:
            self.face_tools = face_tools if face_tools is not None else FaceTools()
            if isinstance(self.face_tools, FaceTools):
                self.face_tools.check(descriptors=self.tar_algo)
        if self.tar_net:
            self.identity_network = (identity_network if identity_network is not None
                                     else load_identity_network(id_weights))

    @property
    def summary_keys(self):
        """The keys summary() returns: SUMMARY_KEYS restricted to the enabled metrics."""
        keys = ()
        if self.fr:
            keys += FR_KEYS
        if self.vif:
            keys += VIF_KEYS
        if self.tar_algo:
            keys += TAR_ALGO_KEYS
        if self.tar_net:
            keys += TAR_NET_KEYS
        return keys + tuple(BICUBIC_PREFIX + k for k in keys)

    @property
    def per_image_keys(self):
        keys = ()
        if self.fr:
            keys += ("fr_psnr", "fr_ssim")
        if self.vif:
            keys += ("vif",)
        if self.tar_algo:
            keys += ("dist_algo",)
        if self.tar_net:
            keys += ("dist_net",)
        return keys + tuple(BICUBIC_PREFIX + k for k in keys)

    @property
    def descriptor_keys(self):
        """Extra per_image() keys: the dlib descriptors of SR, bicubic and HR (None without an HR face)."""
        return ("desc_algo", BICUBIC_PREFIX + "desc_algo", "hr_desc_algo") if self.tar_algo else ()

    def per_image(self, sr_uint8, bicubic_uint8, hr_uint8):
        """dict of per-image values (keys: per_image_keys, then descriptor_keys).

        fr_psnr/fr_ssim are NaN when no usable face box is found on the HR;
        dist_algo is NaN when no face is found on the HR.
        """
        row = self.local_row(sr_uint8, bicubic_uint8, hr_uint8)
        if self.tar_net:
            row.update(self.net_rows([sr_uint8], [bicubic_uint8], [hr_uint8])[0])
        return {k: row[k] for k in self.per_image_keys + self.descriptor_keys}

    def local_row(self, sr_uint8, bicubic_uint8, hr_uint8):
        """per_image() less the FaceNet distances: what a TensorFlow-free worker process computes.

        The HR face box and HR descriptor are found once and serve both the SR
        and the bicubic values.
        """
        images = {"": np.asarray(sr_uint8), BICUBIC_PREFIX: np.asarray(bicubic_uint8)}
        hr = np.asarray(hr_uint8)
        for prefix, img in images.items():
            if img.shape != hr.shape:
                raise ValueError(f"{prefix or 'SR '}image shape {img.shape} differs from HR {hr.shape}")
        row = {}
        box = self.face_tools.detect_box(hr) if (self.fr or self.tar_algo) else None
        if self.fr:
            for prefix, img in images.items():
                row[prefix + "fr_psnr"], row[prefix + "fr_ssim"] = fr_quality(img, hr, box)
        if self.vif:
            for prefix, img in images.items():
                row[prefix + "vif"] = vif(hr, img)
        if self.tar_algo:
            # the descriptors ride along (not in per_image_keys) for metrics.identification's rank-1
            row["hr_desc_algo"] = None if box is None else self.face_tools.descriptor(hr, box)
            for prefix, img in images.items():
                row[prefix + "desc_algo"] = None if box is None else self.face_tools.descriptor(img, box)
                row[prefix + "dist_algo"] = (float("nan") if box is None
                                             else algo_distance(row[prefix + "desc_algo"], row["hr_desc_algo"]))
        return row

    def net_rows(self, srs, bicubics, hrs):
        """[{dist_net, bicubic_dist_net}] of N faces with one FaceNet call on their 3N images.

        Each HR is embedded once, for both distances. The values depend (in
        the last bits) on how faces are grouped into calls, so callers that
        must reproduce a run group them the same way.
        """
        n = len(hrs)
        batch = np.stack([*srs, *bicubics, *hrs]).astype(np.float32)
        emb = np.asarray(self.identity_network.embed(batch), np.float64)
        return [{"dist_net": net_distance(emb[i], emb[2 * n + i]),
                 BICUBIC_PREFIX + "dist_net": net_distance(emb[n + i], emb[2 * n + i])} for i in range(n)]

    def summary(self, rows):
        """Means / TARs / fr_images over per_image() rows (keys: summary_keys).

        fr_psnr/fr_ssim: means over the images with a usable HR face box
        (fr_images of them; NaN if none; inf if a crop is identical, as
        psnr). vif: mean. TARs: eq. 12 in percent over all rows.
        """
        rows = list(rows)
        out = {}
        for prefix in ("", BICUBIC_PREFIX):
            col = lambda k: [r[prefix + k] for r in rows]  # noqa: E731
            if self.fr:
                out[prefix + "fr_psnr"] = _nanmean(col("fr_psnr"))
                out[prefix + "fr_ssim"] = _nanmean(col("fr_ssim"))
                ok = ~np.isnan(np.asarray(col("fr_psnr"), np.float64))
                out[prefix + "fr_images"] = int(np.count_nonzero(ok))
            if self.vif:
                out[prefix + "vif"] = _nanmean(col("vif"))
            if self.tar_algo:
                for t, k in zip(ALGO_THRESHOLDS, TAR_ALGO_KEYS):
                    out[prefix + k] = tar(col("dist_algo"), t)
            if self.tar_net:
                for t, k in zip(NET_THRESHOLDS, TAR_NET_KEYS):
                    out[prefix + k] = tar(col("dist_net"), t)
        return {k: out[k] for k in self.summary_keys}


def evaluate_face(sr, bicubic, hr, png_paths, face_metrics=None, brisque=False):
    """Write a face's SR and bicubic PNGs; return its metrics row, or None without an HR.

    Every per-image metric but FaceNet's distances is computed here: a new one
    is one more `row.update(...)`. `face_metrics`: a FaceMetrics (its local_row);
    `brisque`: whether to score SR and bicubic with BRISQUE.
    """
    for path, image in zip(png_paths, (sr, bicubic)):
        write_png(path, image)
    if hr is None:
        return None
    row = {**quality(sr, hr), "bicubic_psnr": psnr(bicubic, hr), "bicubic_ssim": ssim(bicubic, hr)}
    if brisque:
        row.update(brisque_per_image(sr, bicubic))
    if face_metrics is not None:
        row.update(face_metrics.local_row(sr, bicubic, hr))
    return row


_worker_face_metrics = None
_worker_brisque = False


def _start_worker(flags, tool_settings, brisque):
    global _worker_face_metrics, _worker_brisque
    _worker_brisque = brisque
    if any(flags.values()):
        tools = FaceTools(**tool_settings) if (flags["fr"] or flags["tar_algo"]) else None
        _worker_face_metrics = FaceMetrics(**flags, tar_net=False, face_tools=tools)


def _worker_evaluate(args):
    return evaluate_face(*args, face_metrics=_worker_face_metrics, brisque=_worker_brisque)


def _worker_flags(face_metrics):
    flags = {"fr": False, "vif": False, "tar_algo": False}
    settings = {}
    if face_metrics is not None:
        flags = {k: getattr(face_metrics, k) for k in flags}
        tools = face_metrics.face_tools
        if tools is not None:
            settings = {"upsample": tools.upsample, "landmarks": tools.landmarks, "num_jitters": tools.num_jitters}
    return flags, settings


@contextlib.contextmanager
def _without_main_script():
    """Processes spawned in this block start with an empty __main__.

    A spawned process re-runs the parent's __main__ script before its task, and the workers need
    none of what a caller's script imports (a test runner's, a notebook's): on two cores that
    doubled the time of test.py on the sample faces when test.py started TensorFlow at its top.
    Process.start() reads __main__ synchronously.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Evaluation:
    """Rows of per-image metrics, computed as faces are added and returned in the order added.

    `face_metrics`: the run's FaceMetrics (the paper's face metrics) or None;
    `workers`: processes for `evaluate_face` (1: in the caller);
    `brisque`: whether the rows hold BRISQUE scores.
    `add()` returns at once unless the workers are BACKLOG_PER_WORKER faces
    per worker behind; `completed()` counts the faces finished since the last
    call (progress bars); `finish()` waits for everything and returns the rows.
    """

    def __init__(self, workers=1, face_metrics=None, brisque=False):
        self.face_metrics = face_metrics
        self.brisque = brisque
        self.workers = max(1, int(workers))
        self._rows, self._net = {}, []
        self._pending, self._done, self._count = set(), 0, 0
        self._pool = None
        if self.workers > 1:
            with _without_main_script():
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker,
                                                 initargs=(*_worker_flags(face_metrics), brisque))
                # Start every worker now (they spawn on demand), so that loading dlib's models overlaps
                # with the generator's first batch.
                for _ in range(self.workers):
                    self._pool.submit(int)

    @property
    def _net_on(self):
        return self.face_metrics is not None and self.face_metrics.tar_net

    def add(self, sr, bicubic, hr, png_paths):
        """Queue one face (uint8 SR, bicubic, HR or None, and the two PNG paths)."""
        index, self._count = self._count, self._count + 1
        if self._pool is None:
            self._store(index, evaluate_face(sr, bicubic, hr, png_paths, self.face_metrics, self.brisque))
        else:
            while len(self._pending) >= BACKLOG_PER_WORKER * self.workers:
                self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)
            future = self._pool.submit(_worker_evaluate, (sr, bicubic, hr, png_paths))
            future.index = index
            self._pending.add(future)
            self._collect([f for f in self._pending if f.done()])
        if hr is not None and self._net_on:
            self._net.append((index, sr, bicubic, hr))
            if len(self._net) == FACENET_GROUP:
                self._embed()

    def completed(self):
        """Faces finished since the last call."""
        if self._pool is not None:
            self._collect([f for f in self._pending if f.done()])
        done, self._done = self._done, 0
        return done

    def finish(self):
        """Every row (None for a face without HR), in the order the faces were added."""
        if self._net:
            self._embed()
        while self._pending:
            self._collect(wait(self._pending, return_when=FIRST_COMPLETED).done)
        self.close()
        return [self._rows[i] for i in range(self._count)]

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _collect(self, futures):
        for future in list(futures):
            self._pending.discard(future)
            self._store(future.index, future.result())

    def _store(self, index, row):
        known = self._rows.get(index)
        if known is not None and row is not None:  # FaceNet's half came first
            row = {**row, **known}
        self._rows[index] = row if row is not None else known
        self._done += 1

    def _embed(self):
        indices, srs, bicubics, hrs = zip(*self._net)
        self._net = []
        for index, values in zip(indices, self.face_metrics.net_rows(srs, bicubics, hrs)):
            self._rows[index] = {**self._rows.get(index, {}), **values}


def prefetched(items, load):
    """(item, load(item)) for each item in order, the next one loading in a thread while the caller works."""
    with ThreadPoolExecutor(1) as pool:
        ahead = None
        for item in items:
            following = item, pool.submit(load, item)
            if ahead is not None:
                yield ahead[0], ahead[1].result()
            ahead = following
        if ahead is not None:
            yield ahead[0], ahead[1].result()
