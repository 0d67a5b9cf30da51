"""Export trained generator weights for deployment.

    python -m scripts.export --weight_path W --output DIR [--int8]

writes DIR/saved_model/ (signatures serving_default: float32 [N, h, w, 3] ->
sr, serving_uint8: uint8 -> sr + sr_uint8, with_edges), DIR/generator_fp32.tflite
and, with --int8, DIR/generator_int8.tflite (post-training quantisation
calibrated on real LR faces: --representative_path plus mirror images). The
TFLite files take batches of --batch_size (fixed; use 16 for throughput, 1
for latency); deploy.export.TFLiteInference runs any batch in chunks of it.
"""
import argparse
import os

from data.constants import LR_SIZE
from utils import fail, start_tensorflow


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--weight_path", required=True, help="generator weights: generator.weights.h5, "
                   "a training checkpoint, G_weight.ckpt, or their folder")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--int8", action="store_true", help="also write the int8 TFLite model")
    p.add_argument("--representative_path", default=os.path.join("datasets", "train"),
                   help="face images that calibrate the int8 model (default datasets/train)")
    p.add_argument("--lr_size", type=int, default=LR_SIZE, help="LR input side of the TFLite models")
    p.add_argument("--batch_size", type=int, default=1, help="fixed batch size of the TFLite models")
    p.add_argument("--no_saved_model", action="store_true", help="write the TFLite files only")
    args = p.parse_args(argv)
    if args.lr_size < 1 or args.batch_size < 1:
        p.error("--lr_size and --batch_size must be positive")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, write the files; returns their paths.

    A bad input raises ValueError (CheckpointError, ExportError) or OSError.
    """
    args = parse_args(argv)
    start_tensorflow()
    from deploy.export import export_files

    written = export_files(args.weight_path, args.output, int8=args.int8,
                           representative_path=args.representative_path, lr_size=args.lr_size,
                           batch_size=args.batch_size, saved_model=not args.no_saved_model)
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:  # CheckpointError and ExportError are ValueErrors
        from models.checkpoint import first_lines

        fail("export", first_lines(err, 1))
