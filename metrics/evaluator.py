"""test.py's per-image evaluation: every core for the metrics, overlapped with the generator.

Where one evaluated 128x128 face's time went before (bundled checkpoint, paper
metrics on, 2-core AMD EPYC with AVX-512 VNNI, shared with other jobs, so
only the ratios hold; 2026-12-02): generator at batch 16 347 ms; FaceNet on
the face's 3 images (SR, bicubic, HR) called per face 871 ms, 189 ms when 16
faces share a call; dlib's 3 face descriptors 437 ms (single-threaded, no
BLAS in dlib-bin; batching them in dlib is no faster); HR face detection
11 ms; PSNR/SSIM of SR and bicubic 16 ms; VIF x2 4 ms; FR crops 4 ms; two
PNGs 5 ms; decoding and framing 0.4 ms, the LR degradation 1.8 ms.

So a run here:
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
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

from metrics.quality import psnr, quality, ssim

# Faces per FaceNet call: 48 images, where the per-face time had levelled off.
FACENET_GROUP = 16
# Faces handed to the workers and not yet back, per worker: bounds memory when
# the generator outruns the metrics (a face's three images are 150 kB).
BACKLOG_PER_WORKER = 32


def default_workers():
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def evaluate_face(sr, bicubic, hr, png_paths, faces=None, brisque=False):
    """Write a face's SR and bicubic PNGs; return its metrics row, or None without an HR.

    Every per-image metric but FaceNet's distances is computed here: a new one
    is one more `row.update(...)`. `faces`: an IdentityEvaluator (its local_row);
    `brisque`: whether to score SR and bicubic with BRISQUE.
    """
    from utils import write_png

    for path, image in zip(png_paths, (sr, bicubic)):
        write_png(path, image)
    if hr is None:
        return None
    row = {**quality(sr, hr), "bicubic_psnr": psnr(bicubic, hr), "bicubic_ssim": ssim(bicubic, hr)}
    if brisque:
        from metrics.brisque import per_image

        row.update(per_image(sr, bicubic))
    if faces is not None:
        row.update(faces.local_row(sr, bicubic, hr))
    return row


_worker_faces = None
_worker_brisque = False


def _start_worker(flags, tool_settings, brisque):
    global _worker_faces, _worker_brisque
    _worker_brisque = brisque
    if any(flags.values()):
        from metrics.face import FaceTools
        from metrics.identity_match import IdentityEvaluator

        tools = FaceTools(**tool_settings) if (flags["fr"] or flags["tar_algo"]) else None
        _worker_faces = IdentityEvaluator(**flags, tar_net=False, face_tools=tools)


def _worker_evaluate(args):
    return evaluate_face(*args, faces=_worker_faces, brisque=_worker_brisque)


def _worker_flags(identity):
    flags = {"fr": False, "vif": False, "tar_algo": False}
    settings = {}
    if identity is not None:
        flags = {k: getattr(identity, k) for k in flags}
        tools = identity.face_tools
        if tools is not None:
            settings = {"upsample": tools.upsample, "landmarks": tools.landmarks, "num_jitters": tools.num_jitters}
    return flags, settings


class Evaluation:
    """Rows of per-image metrics, computed as faces are added and returned in the order added.

    `identity`: the run's IdentityEvaluator (paper metrics) or None;
    `workers`: processes for `evaluate_face` (1: in the caller);
    `brisque`: whether the rows hold BRISQUE scores.
    `add()` returns at once unless the workers are BACKLOG_PER_WORKER faces
    per worker behind; `completed()` counts the faces finished since the last
    call (progress bars); `finish()` waits for everything and returns the rows.
    """

    def __init__(self, workers=1, identity=None, brisque=False):
        self.identity = identity
        self.brisque = brisque
        self.workers = max(1, int(workers))
        self._rows, self._net = {}, []
        self._pending, self._done, self._count = set(), 0, 0
        self._pool = None
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(*_worker_flags(identity), brisque))
            # Start every worker now (they spawn on demand), so that loading dlib's models overlaps
            # with the generator's first batch.
            for _ in range(self.workers):
                self._pool.submit(int)

    @property
    def _net_on(self):
        return self.identity is not None and self.identity.tar_net

    def add(self, sr, bicubic, hr, png_paths):
        """Queue one face (uint8 SR, bicubic, HR or None, and the two PNG paths)."""
        index, self._count = self._count, self._count + 1
        if self._pool is None:
            self._store(index, evaluate_face(sr, bicubic, hr, png_paths, self.identity, self.brisque))
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
        for index, values in zip(indices, self.identity.net_rows(srs, bicubics, hrs)):
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
