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
import json
import os

import cv2
import numpy as np

from data.images import list_images, read_image
from utils import fail

MANIFEST = "photos.json"
GAP = 24  # photo px between neighbouring faces and around them


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


def background(rng, h, w):
    """Smooth random colour: noise at 1/32 of the size, enlarged."""
    small = rng.uniform(40, 220, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 8)


def compose(images, scales, rng):
    """(uint8 photo, [(left, top)]) of `images` resized by `scales`, side by side at random heights."""
    resized = [cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
               for im, s in zip(images, scales)]
    h = max(r.shape[0] for r in resized) + 2 * GAP
    w = sum(r.shape[1] for r in resized) + GAP * (len(resized) + 1)
    photo = background(rng, h, w)
    places, left = [], GAP
    for r in resized:
        top = int(rng.integers(GAP // 2, h - r.shape[0] - GAP // 2 + 1))
        photo[top:top + r.shape[0], left:left + r.shape[1]] = r
        places.append((left, top))
        left += r.shape[1] + GAP
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), places


def compose_photos(args):
    """Write the photos; returns the manifest {photo path relative to PHOTOS: [face, ...]}."""
    people = sorted(d for d in os.listdir(args.faces) if os.path.isdir(os.path.join(args.faces, d)))
    if len(people) < args.people:
        raise ValueError(f"{len(people)} person folder(s) under {args.faces}, fewer than --people {args.people}")
    rng = np.random.default_rng(args.seed)
    manifest = {}
    for person in sorted(rng.choice(people, args.people, replace=False)):
        files = list_images(os.path.join(args.faces, person))
        files = [files[i] for i in rng.permutation(len(files))]
        os.makedirs(os.path.join(args.photos, person))
        start = 0
        while start < len(files):
            chosen = files[start:start + int(rng.integers(2, 5))]
            start += len(chosen)
            scales = rng.uniform(*args.scales, len(chosen))
            photo, places = compose([read_image(f) for f in chosen], scales, rng)
            name = f"{person}/photo_{len(manifest) :03d}.jpg"
            ok, jpeg = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, args.quality])
            jpeg.tofile(os.path.join(args.photos, name))
            manifest[name] = [{"source": os.path.relpath(f, args.faces), "left": x, "top": y, "scale": float(s)}
                              for f, (x, y), s in zip(chosen, places, scales)]
    with open(os.path.join(args.photos, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = compose_photos(args)
    except (ValueError, OSError) as err:
        fail("compose_photos", str(err))
    people = sorted({name.split("/")[0] for name in manifest})
    faces = sum(len(v) for v in manifest.values())
    print(f"wrote {len(manifest)} photos of {faces} faces of {len(people)} people to {args.photos}: "
          + " ".join(people))
    return manifest


if __name__ == "__main__":
    main()
