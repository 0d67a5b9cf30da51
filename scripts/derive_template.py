"""Derive faces.align.TEMPLATE_128: the mean MTCNN landmarks of aligned CelebA faces in the 128x128 frame.

    python -m scripts.derive_template CELEBA_DIR [--count 300] [--seed 0]

Draws --count images at random (--seed) from the 178x218 aligned CelebA images
(img_align_celeba) under CELEBA_DIR, finds the faces on each whole image
(MTCNN, no enlargement), keeps the most confident one and maps its landmarks
through the 178x178 centre crop and the 178 -> 128 resize of the training
frame. Prints how far single faces lie from the mean, per landmark (pixels of
the 128 frame), then the mean [5, 2] (x, y), in faces.align.LANDMARK_NAMES'
order.
"""
import argparse

from utils import start_tensorflow


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.derive_template", description=__doc__.split("\n\n")[0])
    p.add_argument("celeba_dir", help="folder of 178x218 aligned CelebA images (searched recursively)")
    p.add_argument("--count", type=int, default=300, help="images drawn at random")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error(f"--count must be positive, got {args.count}")
    return args


def main(argv=None, detector=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, derive the template; returns it ([5, 2]).

    `detector`: an MTCNN to use instead of the real-photo path's (faces.detect.default_detector).
    """
    args = parse_args(argv)
    start_tensorflow()
    import numpy as np

    from data.constants import CELEBA_SIZE
    from data.images import list_images, read_image
    from faces.align import LANDMARK_NAMES, celeba_to_frame
    from faces.detect import detect_faces

    paths = list_images(args.celeba_dir)
    rng = np.random.default_rng(args.seed)
    chosen = [paths[i] for i in rng.choice(len(paths), min(args.count, len(paths)), replace=False)]
    points = []
    for path in chosen:
        image = read_image(path)
        if image.shape[:2] != CELEBA_SIZE:
            continue
        faces = detect_faces(image, detector=detector, upscale=1)
        if not faces:
            continue
        best = max(faces, key=lambda f: f.confidence)
        points.append(celeba_to_frame(best.landmarks))
    points = np.stack(points)
    mean = points.mean(axis=0)
    spread = np.sqrt(((points - mean) ** 2).sum(-1)).mean(0)
    print(f"{len(points)} of {len(chosen)} images; mean distance to the template per point: "
          + ", ".join(f"{n} {d:.2f}" for n, d in zip(LANDMARK_NAMES, spread)))
    print(np.array2string(mean, precision=3, separator=", "))
    return mean


if __name__ == "__main__":
    main()
