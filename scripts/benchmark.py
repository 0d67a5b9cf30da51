"""CPU/GPU benchmark of the generator's inference paths and of the data pipeline.

    python -m scripts.benchmark [--quick] [--output bench/benchmark.json]

One run measures, on the current machine:
* the machine's fp32 dense matmul rate (GFLOP/s of an N x N tf.matmul,
  N = 4096): the median of samples taken between the rounds of the inference
  timing;
* generator inference per path (keras, keras_frozen, savedmodel, tflite_fp32,
  tflite_int8, keras_bf16), timed round-robin (the machine may be shared and
  its load drift): images/s and achieved GFLOP/s at each batch size, the ratio of
  that to the matmul rate, p50/p90 latency at batch 1;
* output quality of each path on the sample faces (datasets/test): max abs
  difference to the Keras fp32 output, PSNR to it, and the PSNR change against
  the HR faces;
* the training data pipeline alone (data.pipeline.TrainData, one core), from
  files and from TFRecord shards of the same files, and with the real-input
  degradation recipe;
* training: images/s and peak resident memory of train.py's step for G-only
  losses, + identity, + GAN, + both (each in a fresh process), against what
  the networks' FLOPs (TF's profiler on the frozen graphs) predict;
* test.py itself on the sample faces (decoding, batching and writing around
  the generator): its summary.json images_per_s against the matmul rate.
It prints the tables and writes them as JSON and markdown (same stem, .md).

Adding a section (e.g. training images/s): write `def my_section(args, ctx)
-> list of row dicts` in perf/benchmark.py, append `Section("name", "Title",
my_section, COLUMNS)` to its SECTIONS and "name" to SECTION_NAMES here (which
--sections checks before TensorFlow loads); the JSON gets
ctx.results["name"] = rows and the markdown a table with COLUMNS.
"""
import argparse
import os

from data.constants import LR_SIZE
from utils import fail, start_tensorflow

DEFAULT_OUTPUT = os.path.join("bench", "benchmark.json")
PATHS = ("keras", "keras_frozen", "savedmodel", "tflite_fp32", "tflite_int8", "keras_bf16")
SECTION_NAMES = ("inference", "quality", "test_py", "pipeline", "training")  # in perf.benchmark.SECTIONS' order


# -- arguments ----------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and shorter timing windows")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="JSON file; the markdown table goes beside it (.md)")
    p.add_argument("--weight_path", default=None,
                   help="generator weights (any format models.checkpoint reads); default: the first "
                        "generator.weights.h5 under checkpoint/, else random weights (seed 0)")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    p.add_argument("--sections", default=None, help="comma list of sections to run (default: all)")
    p.add_argument("--batch_sizes", default="1,16", help="comma list of batch sizes")
    p.add_argument("--lr_size", type=int, default=LR_SIZE, help="LR side (the generator is 8x)")
    p.add_argument("--matmul_size", type=int, default=4096)
    p.add_argument("--seconds", type=float, default=None,
                   help="timing window per path and batch size (default 10, quick 2)")
    p.add_argument("--sample_path", default=os.path.join("datasets", "test"),
                   help="faces for the quality check")
    p.add_argument("--representative_path", default=os.path.join("datasets", "train"),
                   help="faces (plus mirror images) that calibrate the int8 model")
    p.add_argument("--train_path", default=os.path.join("datasets", "train"),
                   help="pipeline images; a temp folder of generated images is used when it has fewer "
                        "than --pipeline_images")
    p.add_argument("--pipeline_images", type=int, default=None, help="default 256 (quick 32)")
    p.add_argument("--pipeline_batch", type=int, default=16)
    p.add_argument("--intra_op_threads", type=int, default=0, help="TF intra-op threads (0: TF default)")
    p.add_argument("--inter_op_threads", type=int, default=0, help="TF inter-op threads (0: TF default)")
    p.add_argument("--jit_compile", action="store_true", help="XLA-compile the Keras path")
    p.add_argument("--tflite_threads", type=int, default=0, help="TFLite threads (0: all cores)")
    p.add_argument("--train_batch", type=int, default=16, help="batch size of the training section")
    p.add_argument("--train_crop", type=int, default=128, help="HR side of the training section")
    p.add_argument("--train_steps", type=int, default=None,
                   help="timed training steps per configuration, after 2 untimed ones (default 5, quick 1)")
    p.add_argument("--id_weights", default=None,
                   help="FaceNet weights of the identity rows (default: the usual lookup; without any, the "
                        "rows use randomly initialised FaceNet weights, which cost the same)")
    p.add_argument("--test_copies", type=int, default=None,
                   help="test.py section: how many copies of the sample faces it reads (default 10, quick 3)")
    p.add_argument("--work_dir", default=None, help="where the exported models go (default: a temp folder)")
    args = p.parse_args(argv)
    args.paths = _split(args.paths)
    bad = [x for x in args.paths if x not in PATHS]
    if bad:
        p.error(f"unknown path(s) {', '.join(bad)}; expected {', '.join(PATHS)}")
    try:
        args.batch_sizes = sorted({int(b) for b in _split(args.batch_sizes)})
    except ValueError:
        p.error(f"--batch_sizes must be integers, got {args.batch_sizes!r}")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--batch_sizes must be positive")
    if args.lr_size < 1 or args.matmul_size < 1:
        p.error("--lr_size and --matmul_size must be positive")
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 10.0
    if args.pipeline_images is None:
        args.pipeline_images = 32 if args.quick else 256
    if args.train_steps is None:
        args.train_steps = 1 if args.quick else 5
    if args.test_copies is None:
        args.test_copies = 3 if args.quick else 10
    if min(args.train_batch, args.train_steps, args.test_copies) < 1 or args.train_crop < 8 or args.train_crop % 8:
        p.error("--train_batch, --train_steps and --test_copies must be positive, --train_crop a multiple of 8")
    args.sections = _split(args.sections) if args.sections else list(SECTION_NAMES)
    bad = [x for x in args.sections if x not in SECTION_NAMES]
    if bad:
        p.error(f"unknown section(s) {', '.join(bad)}; expected {', '.join(SECTION_NAMES)}")
    return args


def _split(text):
    return [x.strip() for x in str(text).split(",") if x.strip()]


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, run the benchmark; returns the report.

    A bad input raises ValueError or OSError.
    """
    args = parse_args(argv)
    start_tensorflow()
    from perf.benchmark import run

    return run(args)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:
        fail("benchmark", str(err).strip().splitlines()[0] if str(err).strip() else repr(err))
