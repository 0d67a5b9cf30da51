"""Ordinary photos made from a folder of face images, a folder per person: several faces each, at various sizes.

    python -m scripts.compose_photos FACES PHOTOS [--people 8] [--seed 0]

For trying `scripts.prepare_faces` and the fine-tuning recipe of
docs/training.md on faces whose people are known. FACES holds a folder per
person (celeba-subset/train: celeb_N/*.jpg). --people of those folders are
drawn (seed --seed); each person's images are shuffled and placed, 2 to 4 to
a photo, side by side at random heights on a smooth random background, each
scaled by a factor drawn from --scales (below about 0.75 a CelebA face's
frame falls under 128 px, so prepare_faces skips it as too small). A photo
is saved as JPEG of quality --quality to PHOTOS/<person>/photo_NNN.jpg, and
PHOTOS/photos.json lists every photo's faces (source file, left, top,
scale). PHOTOS must not exist.
"""
import argparse
import os

from faces.compose import run


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.compose_photos", description=__doc__.split("\n\n")[0])
    p.add_argument("faces", metavar="FACES", help="folder with a sub-folder of face images per person")
    p.add_argument("photos", metavar="PHOTOS", help="new folder the photos are written to")
    p.add_argument("--people", type=int, default=8, help="people drawn from FACES")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scales", type=float, nargs=2, default=(0.6, 1.6), metavar=("LOW", "HIGH"),
                   help="range of the factor each face image is resized by")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality of the photos")
    args = p.parse_args(argv)
    if not os.path.isdir(args.faces):
        p.error(f"FACES {args.faces} is not a folder")
    if os.path.exists(args.photos):
        p.error(f"PHOTOS {args.photos} exists: give a new folder")
    if args.people < 1 or not 0 < args.scales[0] <= args.scales[1] or not 1 <= args.quality <= 100:
        p.error("--people >= 1, 0 < LOW <= HIGH and --quality 1-100 are required")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None) and run; returns the result."""
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
