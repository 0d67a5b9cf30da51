"""Compare two test.py runs on the same faces: run A minus run B, paired per face, with 95% intervals.

    python -m scripts.compare_runs RUN_A RUN_B [--output comparison.json]
    python -m scripts.compare_runs /tmp/finetune_a /tmp/finetune_b

RUN_A and RUN_B are test.py output folders (their metrics.csv) of two
checkpoints or settings on the same faces, e.g. two fine-tunes scored on
celeba-unseen. Faces are paired by their name (metrics.csv's first column,
the input's path relative to --test_path); faces only one run has are left
out and counted. For each figure both runs have (PSNR, SSIM, FR-PSNR, VIF,
BRISQUE, TAR, rank-1, ...: metrics.intervals' per-face values of the SR
images) it prints each run's mean and the mean of A minus B over the paired
faces with its 95% interval, by bootstrap over people when both runs carry
the faces' identities (metrics.csv's identity column, written when rank-1
ran), else over faces. "A better"/"B better" is said only where the
interval excludes zero (lower is better for BRISQUE). A's and B's rank-1
each match against their own run's HR gallery: the same HR faces when the
runs share --test_path and identities.
"""
import argparse

from metrics.run_comparison import run


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.compare_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("run_a", help="test.py output folder of run A (holds metrics.csv)")
    p.add_argument("run_b", help="test.py output folder of run B, on the same faces")
    p.add_argument("--output", default=None, help="also write the comparison as JSON to this file")
    return p.parse_args(argv)


def main(argv=None):
    """Parse `argv` (sys.argv's if None) and run; returns the result."""
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
