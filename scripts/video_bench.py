"""How much the video path (test.py --real_world on a video) helps, and how fast it runs, on a clip
whose true faces are known.

    python -m scripts.video_bench --faces ../shared/data/celeba-unseen [--seconds 10 --size 640x360]

The clip (video/scene.py): --count aligned 178x218 faces drawn at random (seed --seed) move and
change scale over a still background at --upscale times --size, 16 to 22 px frames once shrunk;
each frame is shrunk --upscale times with INTER_AREA and the clip is H.264 compressed (x264 CRF
--crf) at --fps, with a tone as its audio. `video.clip.super_resolve_video` writes the output; it
is decoded and measured against the full-resolution truth (what each figure means:
video/bench.py's docstring). Then the photo path runs on the first --photo_frames frames, each on
its own, for the time per frame. With --memory the peak memory of test.py --real_world on this
clip and on one --memory times longer is compared (each in its own process).
"""
import argparse
import os

from data.constants import REAL_BUNDLE
from utils import start_tensorflow


def size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"the clip must be at least 16x16, got {text!r}")
    return w, h


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.video_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", required=True, help="folder of aligned 178x218 CelebA frames (searched recursively)")
    p.add_argument("--weight_path", default=REAL_BUNDLE, help="generator weights (test.py --real_world's default)")
    p.add_argument("--int8", action="store_true", help="the int8 generator, as test.py --int8")
    p.add_argument("--count", type=int, default=4, help="faces in the clip")
    p.add_argument("--size", type=size, default=(640, 360), help="the shrunk clip's frame size, WIDTHxHEIGHT")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--crf", type=int, default=None, help="x264 CRF of the shrunk clip (default video.scene.INPUT_CRF)")
    p.add_argument("--upscale", type=int, default=8, help="shrink factor of the clip and upscale of the output")
    p.add_argument("--detect_every", type=int, default=None, help="as test.py's (default video.clip.DETECT_EVERY)")
    p.add_argument("--match_sigma", type=float, default=None, help="as test.py's (default: the video path's)")
    p.add_argument("--photo_frames", type=int, default=10, help="frames the photo path is timed on (0: none)")
    p.add_argument("--memory", type=int, default=0,
                   help="also compare test.py's peak memory on this clip and on one this many times longer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work_dir", default=None, help="where the clips and outputs go (default: a new temporary folder)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.faces):
        p.error(f"--faces {args.faces} is not a folder")
    if args.count < 1 or args.seconds <= 0 or args.fps < 1 or args.upscale < 1 or args.photo_frames < 0:
        p.error("--count, --fps, --upscale must be >= 1, --seconds > 0, --photo_frames >= 0")
    if args.detect_every is not None and args.detect_every < 1:
        p.error("--detect_every must be >= 1")
    if args.match_sigma is not None and not args.match_sigma >= 0:   # NaN too
        p.error(f"--match_sigma must be >= 0, got {args.match_sigma}")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, run the benchmark; returns its figures."""
    args = parse_args(argv)
    start_tensorflow()
    from video.bench import run

    return run(args)


if __name__ == "__main__":
    main()
