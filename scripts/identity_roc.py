"""How well each identity model separates same-identity from different-identity HR faces.

    python -m scripts.identity_roc --test_path FOLDER [--identities FILE] [--output OUT.json] [--limit N]
    python -m scripts.identity_roc --test_path ../shared/data/celeba-subset/test \\
        --identities ../shared/data/celeba-subset/identities.txt

The identity TAR of test.py (metrics.identity) only means something if
its model tells people apart on real HR faces; this is the number to check
first. Every image under --test_path is framed as test.py frames an HR face
(data.images.prepare_hr, 128 x 128, --dataset_mode) and described by:

* "algorithm": dlib 128-d descriptors on the face box dlib's HOG detector finds
  (metrics.face.FaceTools, as test.py's tar_algo), Euclidean distance; faces
  without a detected face are left out and counted;
* "network": FaceNet embeddings (models.identity, weights as test.py finds them
  or --id_weights), squared L2 distance of the L2-normalised embeddings.

A model whose dependency or weights are missing is skipped with the reason;
--models picks the models to run (default both).

Identity of a face: the IDENTITY of its line `relative/path.jpg IDENTITY` in
--identities FILE (paths relative to FILE's folder; a face whose path is not
listed falls back to a line with the same file name), else the name of the
face's parent folder.

Over all pairs of faces i < j, with score = -distance:
* ROC AUC: the probability that a same-identity pair scores higher than a
  different-identity pair, ties counting 1/2 (the Mann-Whitney U statistic
  over n_same x n_different, computed exactly from ranks);
* at each of the paper's thresholds d (algorithm 0.5, 0.6; network 0.02, 0.04),
  TAR: percent of same-identity pairs with distance <= d (accepted, as in eq. 12),
  FAR: percent of different-identity pairs with distance <= d.

Prints a table and writes the numbers as JSON (default results/identity_roc.json).
"""
import argparse
import os

from data.constants import DATASET_MODES
from utils import fail, start_tensorflow

PROG = "identity_roc"
MODELS = ("algorithm", "network")
DEFAULT_OUTPUT = os.path.join("results", "identity_roc.json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.identity_roc", description=__doc__.split("\n\n")[0])
    p.add_argument("--test_path", required=True, help="folder of HR face images (searched recursively)")
    p.add_argument("--identities", default=None,
                   help="file of `relative/path.jpg IDENTITY` lines, paths relative to its folder "
                        "(default: each image's parent folder name is its identity)")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help="JSON file to write")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted paths)")
    p.add_argument("--dataset_mode", default="celeba", choices=DATASET_MODES,
                   help="HR face framing, as test.py's --dataset_mode")
    p.add_argument("--id_weights", default=None, help="FaceNet weights (default: the lookup test.py uses)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad or not args.models:
        fail(PROG, f"--models: unknown {', '.join(bad) or 'empty list'}; expected {', '.join(MODELS)}")
    if args.limit is not None and args.limit < 1:
        fail(PROG, f"--limit must be positive, got {args.limit}")
    return args


def main(argv=None, face_tools=None, network=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, compare; returns the result written.

    `face_tools` / `network` may be given loaded (tests, a caller that has them).
    """
    args = parse_args(argv)
    start_tensorflow()
    from metrics.identity_roc import run

    return run(args, PROG, face_tools, network)


if __name__ == "__main__":
    main()
