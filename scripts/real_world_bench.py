"""How much the real-photo path (test.py --real_world) helps, on group photos with a known truth.

    python -m scripts.real_world_bench --faces ../shared/data/celeba-unseen [--count 120]

Group photos are tiled from aligned 178x218 CelebA frames (--cols x --rows
per photo, faces drawn at random, seed --seed), so every face's true
training frame is known. Each photo is cropped to a multiple of the factor
f and shrunk f times with INTER_AREA, optionally given Gaussian noise
(--noise_sigma) and saved as JPEG (--jpeg_quality) and read back, then run
through `faces.photo.super_resolve_photo` with --upscale f, so the output has
the original's size; the bicubic baseline is the upscaling of that same
degraded photo. The header names the input. Per factor it prints:

* frame: the side of a face's training frame in the shrunk photo (178 / f px);
* found: faces detected (a detection matches a true face when its frame
  centre is within a quarter frame of the truth's), super-resolved: faces
  the policy sent through the model; false faces: detections that match no
  true face (all photos together);
* gain: PSNR over the face region (the pasting mask `face_mask` placed by the
  TRUE frame, weight >= 0.5) of the output minus that of the bicubic
  upscaling of the same shrunk photo, both against the original: mean,
  worst, share of faces above +0.05 dB (faces not super-resolved count as 0);
* ceiling: the same faces super-resolved and pasted with their true frame
  (no detector or landmark error): mean gain and share improved (0 where
  the policy leaves faces of that size bicubic);
* colour: mean absolute offset of the face region's mean colour from the
  original's (8-bit levels), output vs bicubic;
* photo: whole-photo PSNR gain over bicubic, worst photo.
"""
import argparse
import os

from data.constants import REAL_BUNDLE
from options.degradation import jpeg_quality, noise_sigma
from utils import start_tensorflow


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.real_world_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", required=True, help="folder of aligned 178x218 CelebA frames (searched recursively)")
    p.add_argument("--weight_path", default=REAL_BUNDLE,
                   help="generator weights (as test.py; the default is test.py --real_world's)")
    p.add_argument("--factors", default="2,6,8,11,16", help="comma-separated shrink factors")
    p.add_argument("--count", type=int, default=120, help="faces per factor (whole photos: rounded up)")
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--rows", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the draw of faces and of --noise_sigma")
    p.add_argument("--noise_sigma", type=noise_sigma, default=0.0,
                   help="Gaussian noise added to each shrunk photo, sigma in grey levels (0: none), drawn from --seed")
    p.add_argument("--jpeg_quality", type=jpeg_quality, default=None,
                   help="save each shrunk photo (after the noise) as JPEG at this quality (OpenCV) and read it back")
    p.add_argument("--match_sigma", type=float, default=None,
                   help="smoothing of the output's correction to its input, input px (0: full); default: "
                        "test.py --real_world's choice per photo")
    p.add_argument("--force_large", action="store_true", help="super-resolve faces of every size (as test.py's flag)")
    args = p.parse_args(argv)
    try:
        args.factors = [int(f) for f in args.factors.split(",")]
    except ValueError:
        p.error(f"--factors must be whole numbers separated by commas, got {args.factors!r}")
    if not os.path.isdir(args.faces):
        p.error(f"--faces {args.faces} is not a folder")
    if args.match_sigma is not None and not args.match_sigma >= 0:   # NaN too
        p.error(f"--match_sigma must be >= 0, got {args.match_sigma}")
    if min(args.factors) < 1 or args.count < 1 or args.cols < 1 or args.rows < 1:
        p.error("--factors, --count, --cols and --rows must be >= 1")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, run the benchmark; returns its rows."""
    args = parse_args(argv)
    start_tensorflow()
    from faces.bench import run

    return run(args)


if __name__ == "__main__":
    main()
