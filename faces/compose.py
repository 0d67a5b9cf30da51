"""Ordinary photos composed of known people's face images: the work of `python -m scripts.compose_photos`
(what it writes: that script's docstring).
"""
import json
import os

import cv2
import numpy as np

from data.images import list_images, read_image
from utils import fail

MANIFEST = "photos.json"
GAP = 24  # photo px between neighbouring faces and around them


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


def run(args):
    """The photos scripts/compose_photos.py's `args` ask for, and their manifest; returns the manifest."""
    try:
        manifest = compose_photos(args)
    except (ValueError, OSError) as err:
        fail("compose_photos", str(err))
    people = sorted({name.split("/")[0] for name in manifest})
    faces = sum(len(v) for v in manifest.values())
    print(f"wrote {len(manifest)} photos of {faces} faces of {len(people)} people to {args.photos}: "
          + " ".join(people))
    return manifest

