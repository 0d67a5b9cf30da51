"""The benchmark of `python -m scripts.benchmark`: what it measures is that script's docstring.

A section is `def my_section(args, ctx) -> list of row dicts` and a Section("name", "Title", my_section,
COLUMNS) in SECTIONS, whose names scripts/benchmark.py's SECTION_NAMES lists in the same order.
"""
import json
import math
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections import namedtuple
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

import cv2
import keras
import numpy as np
import tensorflow as tf
from keras import layers
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from data.constants import SHARD_SUFFIX
from data.degradation import degrade
from data.images import list_images, prepare_hr, read_image
from data.pipeline import DataConfig, TrainData
from data.storage import write_shards
from deploy import export
from deploy.int8 import cpu_flags
from metrics.quality import psnr
from models import Discriminator, build_generator, identity, load_generator, save_generator
from models.checkpoint import GENERATOR_FILE, named_layers
from options.train_options import TrainOptions
from training.trainer import Trainer
from utils import describe_device, to_uint8

PATH_NOTES = {
    "keras": "Keras fp32 (tf.function, oneDNN)",
    "keras_frozen": "Keras fp32, weights frozen to constants (oneDNN caches reordered filters)",
    "savedmodel": "SavedModel fp32, serving_default signature",
    "tflite_fp32": "TFLite fp32, XNNPACK",
    "tflite_int8": "TFLite int8 PTQ (avg-pools float), XNNPACK",
    "keras_bf16": "Keras mixed_bfloat16 (opt-in; AMX/AVX512-BF16 via oneDNN)",
}

ROUNDS = 4  # round-robin rounds of the inference timing (quick: 1)
PIPELINE_SHARDS = 8  # the pipeline section's images, also read as this many shards

Section = namedtuple("Section", "name title run columns")


# -- timing -------------------------------------------------------------------
def time_calls(fn, seconds, min_calls, warmup=1):
    """Per-call wall times of fn() over at least `seconds` and `min_calls` calls."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values):
    return percentile(values, 50)


# -- context shared by the sections --------------------------------------------
class Context:
    def __init__(self, args):
        self.args = args
        self.results = {}
        self.matmul_samples = []
        self._generator = None
        self.weights = None
        self.work_dir = args.work_dir or tempfile.mkdtemp(prefix="eipnet_bench_")

    # matmul yardstick ---------------------------------------------------------
    def sample_matmul(self, calls=1):
        n = self.args.matmul_size
        if not hasattr(self, "_mm"):
            a = tf.random.stateless_normal([n, n], seed=[1, 2])
            b = tf.random.stateless_normal([n, n], seed=[3, 4])
            self._mm = tf.function(lambda: tf.matmul(a, b))
            self._mm().numpy()  # trace and warm up
        for _ in range(calls):
            t = time.perf_counter()
            self._mm().numpy()
            self.matmul_samples.append(2.0 * n ** 3 / (time.perf_counter() - t) / 1e9)

    @property
    def matmul_gflops(self):
        return median(self.matmul_samples) if self.matmul_samples else float("nan")

    # the generator -------------------------------------------------------------
    def generator(self):
        if self._generator is None:
            path = self.args.weight_path or find_weights()
            if path:
                self._generator = load_generator(path, lr_size=self.args.lr_size)
                self.weights = path
            else:
                tf.keras.utils.set_random_seed(0)
                self._generator = build_generator(self.args.lr_size)
                self.weights = "random (seed 0; no generator.weights.h5 under checkpoint/)"
        return self._generator


def find_weights(root="checkpoint"):
    """The first generator.weights.h5 under `root` (sorted walk), or None."""
    for folder, subfolders, files in sorted(os.walk(root)):
        subfolders.sort()
        if GENERATOR_FILE in files:
            return os.path.join(folder, GENERATOR_FILE)
    return None


def generator_gflop(generator, lr_size):
    """GFLOP (2 x multiply-adds of the convolutions) per image at `lr_size`."""
    shapes = {}

    def record(layer):
        original = layer.call

        def call(x, *a, **k):
            out = original(x, *a, **k)
            shapes[layer.name] = (tuple(x.shape), tuple(out.shape))
            return out
        return original, call

    convs = [x for x in named_layers(generator) if isinstance(x, (layers.Conv2D, layers.Conv2DTranspose))]
    originals = []
    for layer in convs:
        original, call = record(layer)
        originals.append(original)
        object.__setattr__(layer, "call", call)
    try:
        generator(tf.zeros([1, lr_size, lr_size, 3]), training=False)
    finally:
        for layer in convs:
            object.__delattr__(layer, "call")
    macs = 0
    for layer in convs:
        (_, h, w, cin), (_, ho, wo, cout) = shapes[layer.name]
        kh, kw = layer.kernel_size
        # A transposed conv does kh*kw*cin*cout MACs per *input* pixel.
        pixels = h * w if isinstance(layer, layers.Conv2DTranspose) else ho * wo
        macs += pixels * kh * kw * cin * cout
    return 2.0 * macs / 1e9


# -- inference paths ----------------------------------------------------------
def _representative(ctx):
    args, load = ctx.args, ctx.args.lr_size * 8
    faces = []
    for folder in (args.representative_path, args.sample_path):
        try:
            faces = export.representative_faces(folder, load_size=load)
            ctx.representative = folder
            break
        except Exception:  # missing/empty folder: try the next one
            continue
    if len(faces) == 0:
        faces = np.random.default_rng(0).integers(0, 256, (8, args.lr_size, args.lr_size, 3)).astype("float32")
        ctx.representative = "random pixels (no face folder found)"
    return faces


def make_runners(ctx, path):
    """{batch size: predict(lr) -> sr numpy} for one path."""
    args, g = ctx.args, ctx.generator()
    spec = tf.TensorSpec([None, args.lr_size, args.lr_size, 3], tf.float32)
    if path == "keras":
        f = tf.function(lambda x: g(x, training=False)[0], input_signature=[spec], jit_compile=args.jit_compile)
        run = lambda x: f(x).numpy()  # noqa: E731
        return {b: run for b in args.batch_sizes}
    if path == "keras_frozen":
        forward = export.frozen_forward(g, spec)
        return {b: (lambda x: tf.nest.flatten(forward(tf.constant(x)))[0].numpy()) for b in args.batch_sizes}
    if path == "keras_bf16":
        f = tf.function(bf16_forward(g, args.lr_size), input_signature=[spec], jit_compile=args.jit_compile)
        run = lambda x: f(x).numpy()  # noqa: E731
        return {b: run for b in args.batch_sizes}
    if path == "savedmodel":
        folder = os.path.join(ctx.work_dir, export.SAVED_MODEL_DIR)
        export.export_saved_model(g, folder)
        model = export.SavedModelInference(folder, edges=False)
        return {b: (lambda x: model.predict(x)[0]) for b in args.batch_sizes}
    quantization = "int8" if path == "tflite_int8" else "float32"
    representative = _representative(ctx) if quantization == "int8" else None
    runners = {}
    for b in args.batch_sizes:
        file = os.path.join(ctx.work_dir, f"generator_{quantization}_b{b}.tflite")
        export.export_tflite(g, file, quantization=quantization, representative=representative,
                             lr_size=args.lr_size, batch_size=b)
        model = export.TFLiteInference(file, num_threads=args.tflite_threads or None)
        runners[b] = lambda x, m=model: m.predict(x)[0]
    return runners


def bf16_forward(generator, lr_size):
    """The generator under Keras' mixed_bfloat16 policy (same weights), float32 sr out."""
    twin = build_generator(lr_size, generator.output_nc, policy="mixed_bfloat16")
    twin.set_weights(generator.get_weights())
    return lambda x: tf.cast(twin(x, training=False)[0], tf.float32)


def run_inference(args, ctx):
    """Round-robin timing: every path and batch size gets a slice of each round,
    with a matmul sample per round, so that a shared machine's drifting load
    falls on all of them alike: sequential windows of identical graphs differ
    too much on a shared machine (docs/benchmarks.md, "How to rerun")."""
    gflop = generator_gflop(ctx.generator(), args.lr_size)
    ctx.results["gflop_per_image"] = gflop
    faces = sample_faces(ctx)
    ctx.sample_outputs = {}
    runners, setup = {}, {}
    for path in args.paths:
        t = time.perf_counter()
        runners[path] = make_runners(ctx, path)
        setup[path] = time.perf_counter() - t
        if faces is not None:
            ctx.sample_outputs[path] = np.concatenate(
                [runners[path][min(args.batch_sizes)](faces[1][i:i + 1]) for i in range(len(faces[1]))])
        print(f"  {path}: ready in {setup[path]:.0f} s", flush=True)
    source = faces[1] if faces is not None else np.zeros([1, args.lr_size, args.lr_size, 3])
    inputs = {b: np.resize(source, (b, args.lr_size, args.lr_size, 3)).astype(np.float32) for b in args.batch_sizes}
    rounds = 1 if args.quick else ROUNDS
    times = {(p, b): [] for p in args.paths for b in args.batch_sizes}
    ctx.sample_matmul(1)
    for r in range(rounds):
        for path in args.paths:
            for b in args.batch_sizes:
                min_calls = max(1, (3 if args.quick else 10) // rounds) if b == 1 else 1
                times[(path, b)] += time_calls(lambda: runners[path][b](inputs[b]), args.seconds / rounds,
                                               min_calls, warmup=1 if r == 0 else 0)
        ctx.sample_matmul(1)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    rows = []
    for (path, b), t in times.items():
        ips = b / median(t)
        row = {"path": path, "batch": b, "images_per_s": ips, "gflops": ips * gflop, "calls": len(t),
               "setup_s": setup[path], "note": PATH_NOTES[path]}
        if b == 1:
            row["p50_ms"] = 1e3 * percentile(t, 50)
            row["p90_ms"] = 1e3 * percentile(t, 90)
        rows.append(row)
    fp32 = {b: max((r["images_per_s"] for r in rows if r["batch"] == b and r["path"] in
                    ("keras", "keras_frozen", "savedmodel", "tflite_fp32")), default=None)
            for b in args.batch_sizes}
    for row in rows:
        best = fp32.get(row["batch"])
        row["speedup_vs_best_fp32"] = row["images_per_s"] / best if best else None
    ctx.inference_rows = rows
    # The best path depends on the CPU (int8 gains only with VNNI; TFLite fp32 beat Keras on one AMD, lost on
    # an Intel Xeon): the report names the winner on the machine it ran on.
    ctx.results["fastest"] = {
        str(b): max((r for r in rows if r["batch"] == b), key=lambda r: r["images_per_s"])["path"]
        for b in args.batch_sizes}
    return rows


# -- output quality -----------------------------------------------------------
def sample_faces(ctx):
    """(hr uint8, lr float32) of the sample faces, or None when there are none."""
    if hasattr(ctx, "_faces"):
        return ctx._faces
    load = ctx.args.lr_size * 8
    files = list_images(ctx.args.sample_path) if os.path.isdir(ctx.args.sample_path) else []
    ctx._faces = None
    if files:
        hr = np.stack([prepare_hr(read_image(f), load, load) for f in files])
        ctx._faces = (hr, degrade(hr).numpy().astype("float32"))
    return ctx._faces


def run_quality(args, ctx):
    faces = sample_faces(ctx)
    outputs = getattr(ctx, "sample_outputs", {})
    if faces is None or "keras" not in outputs:
        return []
    hr = faces[0]
    ref = outputs["keras"]

    def mean_psnr(a, b):
        return float(np.mean([psnr(to_uint8(a[i]), b[i]) for i in range(len(a))]))

    ref_psnr = mean_psnr(ref, hr)
    rows = []
    for path, out in outputs.items():
        p = mean_psnr(out, hr)
        vs = mean_psnr(out, to_uint8(ref))
        rows.append({"path": path, "faces": len(hr), "max_abs_diff_vs_keras": float(np.abs(out - ref).max()),
                     "psnr_vs_keras_db": None if math.isinf(vs) else vs, "psnr_hr_db": p,
                     "psnr_loss_db": ref_psnr - p})
    return rows


# -- data pipeline ----------------------------------------------------------------
def _pipeline_folder(args, tmp):
    if os.path.isdir(args.train_path) and len(list_images(args.train_path)) >= args.pipeline_images:
        return args.train_path, False
    rng = np.random.default_rng(0)
    folder = os.path.join(tmp, "pipeline_images")
    os.makedirs(folder, exist_ok=True)
    for i in range(args.pipeline_images):
        # CelebA-sized smooth colour fields with some detail, as JPEG.
        small = rng.integers(0, 256, (14, 12, 3), dtype=np.uint8)
        image = cv2.resize(small, (178, 218), interpolation=cv2.INTER_CUBIC)
        image = cv2.add(image, rng.integers(0, 24, image.shape, dtype=np.uint8))
        cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), image)
    return folder, True


def run_pipeline(args, ctx):
    folder, generated = _pipeline_folder(args, ctx.work_dir)
    batch = max(1, min(args.pipeline_batch, len(list_images(folder))))
    # several shards, so that the interleave across them is part of what is timed
    total_mb = sum(os.path.getsize(f) for f in list_images(folder)) / 2 ** 20
    os.makedirs(ctx.work_dir, exist_ok=True)
    shards = os.path.join(tempfile.mkdtemp(prefix="pipeline_shards_", dir=ctx.work_dir), "faces")  # a rerun's own
    write_shards(folder, shards, total_mb / PIPELINE_SHARDS, progress=False)
    rows = []
    for label, path, cache_mb, recipe in (
            ("cached (steady state)", folder, 4096, "paper"), ("decode every epoch", folder, 0, "paper"),
            ("shards, decode every epoch", shards + "-*" + SHARD_SUFFIX, 0, "paper"),
            ("cached, real-input recipe", folder, 4096, "real")):
        # train.py's defaults for everything else: parsed, not validated, so CUDA_VISIBLE_DEVICES stays as it is
        opt = TrainOptions().parser().parse_args(["--train_path", path, "--batchSize", str(batch),
                                                  "--cache_memory_mb", str(cache_mb),
                                                  "--degradation_recipe", recipe])
        data = TrainData(DataConfig.from_options(opt))
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.threading.max_intra_op_parallelism = 1

        def epoch(e):
            """(images after the first batch, their seconds, seconds to the first batch)."""
            start = time.perf_counter()
            batches = iter(data.dataset(e).with_options(options))
            next(batches)
            first = time.perf_counter()
            n = sum(int(batch["lr"].shape[0]) for batch in batches)
            return n, time.perf_counter() - first, first - start

        epoch(0)  # tracing, and the cache fill when cached
        images, seconds, setups, e = 0, 0.0, [], 1
        while images == 0 or seconds + sum(setups) < args.seconds:
            n, s, setup = epoch(e)
            images, seconds, e = images + n, seconds + s, e + 1
            setups.append(setup)
        rows.append({"pipeline": label, "images_per_s": images / seconds, "images": images,
                     "epochs": e - 1, "epoch_setup_s": median(setups), "batch": data.batch_size, "threads": 1,
                     "folder": ("generated JPEGs 178x218" if generated else folder)
                     + (f" in {PIPELINE_SHARDS} TFRecord shards" if path != folder else "")})
        print(f"  pipeline {label}: {images / seconds:.1f} images/s", flush=True)
    return rows


# -- training -------------------------------------------------------------------
# (row, identity loss on, GAN phase on)
TRAIN_CONFIGS = (("G losses (L_rgb, L_e, L_lc)", False, False), ("+ identity (L_id)", True, False),
                 ("+ GAN (L_ad, D update)", False, True), ("+ identity + GAN", True, True))


def graph_gflop(fn, spec):
    """GFLOP of one call of `fn` on `spec`, as TF's profiler counts the ops of the frozen graph."""
    frozen = convert_variables_to_constants_v2(tf.function(fn).get_concrete_function(spec))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops / 1e9


def training_gflop(crop):
    """Forward GFLOP per image of G, D and FaceNet at the training section's size, and each row's step cost.

    A trained network's step costs ~3 forwards (the backward pass computes
    input and weight gradients, ~2 forwards); a frozen one that gradients flow
    through ~2 (input gradients only). So per image: G losses 3 G; L_id adds
    FaceNet on HR (1) and on SR with its backward (2); the GAN phase adds the D
    update (G forward, D forward and backward on HR and SR: 1 G + 6 D) and L_ad
    (D forward and input backward on SR: 2 D).
    """
    g = build_generator(crop // 8)
    d = Discriminator()
    face = tf.TensorSpec([1, crop, crop, 3], tf.float32)
    forward = {"G": graph_gflop(lambda x: g(x, training=False)[0], tf.TensorSpec([1, crop // 8, crop // 8, 3])),
               "D": graph_gflop(lambda x: d(x, training=False), face),
               "FaceNet": graph_gflop(identity.IdentityNetwork(pretrained=False).bottleneck, face)}
    step = {}
    for name, with_identity, gan in TRAIN_CONFIGS:
        step[name] = (3 * forward["G"] + (3 * forward["FaceNet"] if with_identity else 0.0)
                      + (forward["G"] + 8 * forward["D"] if gan else 0.0))
    return forward, step


def peak_rss_mb():
    """This process's peak resident memory in MB (Linux), or None.

    VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across execve, so
    a spawned child would report its parent's peak; VmHWM belongs to the
    address space, which starts afresh at exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _train_child(arg_values, config, folder, id_weights):
    """(images/s, seconds per step, peak RSS in MB) of train.py's step for one TRAIN_CONFIGS row.

    Runs in a fresh process, so that its peak memory is its own. The batches
    are read before the timing: the pipeline has its own section.
    """
    args = types.SimpleNamespace(**arg_values)
    configure_tf(args)
    _, with_identity, gan = config
    with tempfile.TemporaryDirectory() as tmp:
        if with_identity and not id_weights:  # random FaceNet weights: the same FLOPs
            id_weights = os.path.join(tmp, "random_facenet.weights.h5")
            identity.build_facenet().save_weights(id_weights)
        argv = ["--train_path", folder, "--test_path", folder, "--checkpoint_path", tmp,
                "--batchSize", str(args.train_batch), "--load_size", str(args.train_crop),
                "--crop_size", str(args.train_crop), "--niter", "1000", "--gan_start_iter", "0" if gan else "1000"]
        argv += ["--id_weights", id_weights] if with_identity else ["--lambda_id", "0"]
        trainer = Trainer(TrainOptions().parse(argv))
        batches, epoch = [], 0
        while len(batches) < args.train_steps + 2:
            batches += list(trainer.batches(epoch, 0))
            epoch += 1
        for batch in batches[:2]:  # tracing
            trainer.train_step(batch)
        start = time.perf_counter()
        for batch in batches[2:args.train_steps + 2]:
            trainer.train_step(batch)
        seconds = (time.perf_counter() - start) / args.train_steps
    return args.train_batch / seconds, seconds, peak_rss_mb()


def run_training(args, ctx):
    try:
        id_weights = identity.find_weights(args.id_weights, download=False)
    except identity.IdentityWeightsError:
        if args.id_weights:
            raise
        id_weights = None
    folder, generated = _pipeline_folder(args, ctx.work_dir)
    forward, step = training_gflop(args.train_crop)
    ctx.results["training_gflop"] = {"forward_per_image": forward, "step_per_image": step}
    rows = []
    for config in TRAIN_CONFIGS:
        name, with_identity, _ = config
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            images_per_s, seconds, peak_mb = pool.submit(_train_child, vars(args), config, folder,
                                                         id_weights).result()
        rows.append({"losses": name, "images_per_s": images_per_s, "step_s": seconds, "peak_rss_mb": peak_mb,
                     "step_gflop_per_image": step[name], "gflops": images_per_s * step[name],
                     "batch": args.train_batch, "crop": args.train_crop,
                     "facenet": ("" if not with_identity else "pretrained" if id_weights else "random weights")})
        print(f"  training, {name}: {images_per_s:.2f} images/s, peak {peak_mb or float('nan'):.0f} MB", flush=True)
    base = rows[0]
    for row in rows:
        # what the step would reach if the added networks ran as efficiently as the generator's step
        row["flop_predicted_images_per_s"] = base["images_per_s"] * base["step_gflop_per_image"] / row[
            "step_gflop_per_image"]
        row["vs_flop_prediction"] = row["images_per_s"] / row["flop_predicted_images_per_s"]
    return rows


# -- test.py itself ---------------------------------------------------------------
def run_test_py(args, ctx):
    """test.py on copies of the sample faces: its own images_per_s, against the matmul rate."""
    faces = list_images(args.sample_path) if os.path.isdir(args.sample_path) else []
    if not faces:
        return []
    folder = os.path.join(ctx.work_dir, "test_py_faces")
    os.makedirs(folder, exist_ok=True)
    for copy in range(args.test_copies):
        for path in faces:
            stem, ext = os.path.splitext(os.path.basename(path))
            shutil.copy(path, os.path.join(folder, f"{stem}_{copy}{ext}"))
    weights = ctx.weights if ctx.weights and os.path.exists(ctx.weights) else None
    if weights is None:
        weights = os.path.join(ctx.work_dir, "generator.weights.h5")
        save_generator(ctx.generator(), weights)
    gflop = ctx.results.get("gflop_per_image") or generator_gflop(ctx.generator(), args.lr_size)
    keras_rate = {r["batch"]: r["images_per_s"] for r in getattr(ctx, "inference_rows", []) if r["path"] == "keras"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for b in args.batch_sizes:
        out = os.path.join(ctx.work_dir, f"test_py_b{b}")
        command = [sys.executable, "test.py", "--weight_path", weights, "--test_path", folder,
                   "--image_save_path", out, "--overwrite", "--batchSize", str(b), "--num_figures", "0",
                   "--crop_size", str(8 * args.lr_size), "--load_size", str(8 * args.lr_size),
                   "--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net"]
        result = subprocess.run(command, cwd=root, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"test.py failed: {result.stderr.strip().splitlines()[-1]}")
        ctx.sample_matmul(1)
        with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        ips = summary["images_per_s"]
        rows.append({"path": "test.py", "batch": b, "images": len(faces) * args.test_copies, "images_per_s": ips,
                     "faces_per_s": summary.get("faces_per_s"),
                     "gflops": ips * gflop, "vs_keras_path": ips / keras_rate[b] if b in keras_rate else None})
        print(f"  test.py batch {b}: {ips:.2f} images/s", flush=True)
    return rows


# -- sections and report ------------------------------------------------------------
INFERENCE_COLUMNS = (("path", "path", "{}"), ("batch", "batch", "{}"), ("images_per_s", "images/s", "{:.2f}"),
                     ("gflops", "GFLOP/s", "{:.1f}"),
                     ("ratio_to_matmul", "/ matmul", "{:.2f}"),
                     ("speedup_vs_best_fp32", "x best fp32", "{:.2f}"),
                     ("p50_ms", "p50 ms", "{:.1f}"), ("p90_ms", "p90 ms", "{:.1f}"), ("note", "what", "{}"))
QUALITY_COLUMNS = (("path", "path", "{}"), ("faces", "faces", "{}"),
                   ("max_abs_diff_vs_keras", "max abs diff vs keras", "{:.3f}"),
                   ("psnr_vs_keras_db", "PSNR vs keras dB", "{:.2f}"), ("psnr_hr_db", "PSNR vs HR dB", "{:.3f}"),
                   ("psnr_loss_db", "PSNR loss dB", "{:+.3f}"))
PIPELINE_COLUMNS = (("pipeline", "pipeline", "{}"), ("images_per_s", "images/s", "{:.1f}"),
                    ("epoch_setup_s", "epoch setup + 1st batch s", "{:.2f}"),
                    ("images", "images", "{}"), ("batch", "batch", "{}"), ("threads", "threads", "{}"),
                    ("folder", "images from", "{}"))

TRAINING_COLUMNS = (("losses", "losses", "{}"), ("images_per_s", "images/s", "{:.2f}"),
                    ("step_s", "s/step", "{:.2f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
                    ("step_gflop_per_image", "GFLOP/image", "{:.1f}"), ("gflops", "GFLOP/s", "{:.1f}"),
                    ("flop_predicted_images_per_s", "FLOP-predicted images/s", "{:.2f}"),
                    ("vs_flop_prediction", "measured / predicted", "{:.2f}"), ("batch", "batch", "{}"),
                    ("crop", "HR", "{}"), ("facenet", "FaceNet", "{}"))
TEST_PY_COLUMNS = (("path", "path", "{}"), ("batch", "batch", "{}"), ("images", "images", "{}"),
                   ("images_per_s", "images/s", "{:.2f}"), ("faces_per_s", "faces/s wall-clock", "{:.2f}"),
                   ("gflops", "GFLOP/s", "{:.1f}"),
                   ("ratio_to_matmul", "/ matmul", "{:.2f}"), ("vs_keras_path", "/ keras path", "{:.2f}"))

SECTIONS = [
    Section("inference", "Generator inference", run_inference, INFERENCE_COLUMNS),
    Section("quality", "Output quality on the sample faces", run_quality, QUALITY_COLUMNS),
    Section("test_py", "test.py end to end (summary.json images_per_s: decoding, batching and writing around "
            "the generator)", run_test_py, TEST_PY_COLUMNS),
    Section("pipeline", "Training data pipeline alone (one core; images/s after each epoch's first batch)",
            run_pipeline, PIPELINE_COLUMNS),
    Section("training", "Training step (train.py's Trainer.train_step; each row a fresh process)",
            run_training, TRAINING_COLUMNS),
]


def markdown_table(rows, columns):
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Flags that decide which inference path is fastest (VNNI: int8 dot products; BF16/AMX: keras_bf16).
CPU_FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def shown_cpu_flags():
    """The CPU_FLAGS_SHOWN this CPU has, or None where /proc/cpuinfo cannot tell."""
    flags = cpu_flags()
    return None if flags is None else [f for f in CPU_FLAGS_SHOWN if f in flags]


def targets(report):
    """One line per target of the benchmark issue that this report's sections measure."""
    lines = []
    rates = {(r["path"], r["batch"]): r["images_per_s"] for r in report.get("inference", [])}
    for batch, path in report.get("fastest", {}).items():
        others = sorted(((v, p) for (p, b), v in rates.items() if b == int(batch) and p != path), reverse=True)
        lines.append(f"fastest path at batch {batch} on this CPU: **{path}** ({rates[(path, int(batch))]:.2f} images/s"
                     + (f"; next {others[0][1]} at {others[0][0]:.2f}" if others else "") + ")")
    for row in report.get("test_py", []):
        lines.append(f"test.py at batch {row['batch']}: {row['ratio_to_matmul']:.2f} of the matmul rate"
                     + (f", {row['vs_keras_path']:.2f}x the plain Keras path" if row["vs_keras_path"] else ""))
    inference = {(r["path"], r["batch"]): r for r in report.get("inference", [])}
    quality = {r["path"]: r for r in report.get("quality", [])}
    for (path, batch), row in sorted(inference.items()):
        if path == "tflite_int8" and row.get("speedup_vs_best_fp32"):
            loss = quality.get(path, {}).get("psnr_loss_db")
            lines.append(f"int8 at batch {batch}: {row['speedup_vs_best_fp32']:.2f}x the fastest fp32 path"
                         + (f", PSNR loss {loss:+.3f} dB on the sample faces" if loss is not None else ""))
    pipeline = {r["pipeline"]: r["images_per_s"] for r in report.get("pipeline", [])}
    training = report.get("training", [])
    if pipeline and training:
        fastest = max(r["images_per_s"] for r in training)
        lines.append("data pipeline on one core: " + ", ".join(
            f"{label} {rate / fastest:.0f}x" for label, rate in pipeline.items()) + " the fastest training step's "
            f"images/s ({fastest:.2f})")
    for row in training[1:]:
        lines.append(f"training {row['losses']}: {row['vs_flop_prediction']:.2f} of the images/s its FLOPs predict")
    return lines


def markdown(report):
    head = [f"# EIPNet generator benchmark ({report['date']})", "",
            f"- machine: {report['machine']}",
            f"- CPU flags: {', '.join(report['cpu_flags']) if report.get('cpu_flags') is not None else 'unknown'}"
            f" (of {', '.join(CPU_FLAGS_SHOWN)})",
            f"- TensorFlow {report['tf_version']}, Keras {report['keras_version']}, Python {report['python']}",
            f"- weights: {report['weights']}",
            f"- settings: {json.dumps(report['settings'], sort_keys=True)}"]
    if "matmul" in report:
        mm = report["matmul"]
        head.append(f"- fp32 dense matmul rate ({mm['size']}x{mm['size']} tf.matmul): **{mm['gflops']:.1f} GFLOP/s** "
                    f"(median of {len(mm['samples_gflops'])} samples: "
                    + ", ".join(f"{s:.0f}" for s in mm["samples_gflops"])
                    + "); one sample per round of the round-robin inference timing")
    if "gflop_per_image" in report:
        head.append(f"- generator cost: {report['gflop_per_image']:.2f} GFLOP per image (2 x conv MACs)")
    if report.get("representative"):
        head.append(f"- int8 calibration faces: {report['representative']} (plus mirror images)")
    if "training_gflop" in report:
        forward = report["training_gflop"]["forward_per_image"]
        head.append("- forward GFLOP per training image (TF profiler, frozen graphs): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in forward.items())
                    + "; a step costs 3 forwards of a trained net, 2 of a frozen one gradients pass through")
    parts = ["\n".join(head)]
    findings = targets(report)
    if findings:
        parts.append("## Against the targets\n\n" + "\n".join(f"- {line}" for line in findings))
    for section in SECTIONS:
        if section.name in report:
            parts.append(f"## {section.title}\n\n" + markdown_table(report[section.name], section.columns))
    return "\n\n".join(parts) + "\n"


def configure_tf(args):
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)


def run(args):
    """The benchmark scripts/benchmark.py's `args` ask for: prints the tables, writes the JSON and markdown;
    returns the report."""
    configure_tf(args)
    ctx = Context(args)
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": describe_device(),
              "tf_version": tf.__version__, "keras_version": keras.__version__,
              "python": platform.python_version(), "cpu_flags": shown_cpu_flags(),
              "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
              "settings": {k: getattr(args, k) for k in ("quick", "batch_sizes", "lr_size", "matmul_size",
                                                         "seconds", "intra_op_threads", "inter_op_threads",
                                                         "jit_compile", "tflite_threads")}}
    print(f"{report['machine']}; TensorFlow {report['tf_version']}", flush=True)
    for section in SECTIONS:
        if section.name in args.sections:
            print(f"{section.title} ...", flush=True)
            report[section.name] = section.run(args, ctx)
    report.update({k: v for k, v in ctx.results.items()})
    if ctx.matmul_samples:
        # every section's ratio against the one yardstick: the median of all samples, taken between their timings
        report["matmul"] = {"size": args.matmul_size, "gflops": ctx.matmul_gflops,
                            "samples_gflops": list(ctx.matmul_samples)}
        for name in ("inference", "test_py"):
            for row in report.get(name, []):
                row["ratio_to_matmul"] = row["gflops"] / ctx.matmul_gflops
    report["weights"] = ctx.weights or "n/a"
    report["representative"] = getattr(ctx, "representative", None)
    text = markdown(report)
    out = args.output
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=float)
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w", encoding="utf-8") as f:
        f.write(text)
    print()
    print(text)
    print(f"wrote {out} and {md}")
    return report

