"""Where SR loses identity: the faces whose SR is further from their HR than bicubic is, by face property.

    python -m scripts.identity_study RESULT --test_path FACES [--dataset_mode celeba] [--figure F.jpg]
    python -m scripts.identity_study /tmp/unseen --test_path ../shared/data/celeba-unseen --dataset_mode celeba

RESULT is a test.py output folder of HR mode with the TAR algorithm on
(metrics.csv's dist_algo and bicubic_dist_algo: dlib descriptor distance of
the SR / bicubic face to its own HR); FACES and --dataset_mode are the
run's --test_path and --dataset_mode, to frame each HR face as test.py did.
Per face, loss = dist_algo - bicubic_dist_algo (> 0: SR is further from
the person than bicubic); faces without an HR face (no distance) are left
out. Each face's properties are measured on its 128x128 HR with dlib's HOG
box and 68 landmarks:
- yaw: |left - right| / (left + right) of the nose tip's distances to the
  two jaw ends (0 frontal, larger turned);
- roll: |angle| of the line through the eye centres, degrees;
- face size: the distance between the eye centres, px of the 128 px frame
  (the HOG box's width comes in a few fixed steps);
- mouth open: inner-lip gap / eye distance; mouth width: mouth corners' distance / eye distance;
- brightness, contrast: mean and standard deviation of the face box's luma;
- bicubic distance: bicubic_dist_algo itself (how much identity the input kept).
For each property the faces are cut into thirds; per third it gives the
share of faces where SR is worse and the mean loss with its 95% interval,
and the top third's mean loss minus the bottom third's with its interval,
by bootstrap over people (metrics.csv's identity column; over faces without
it; metrics.intervals' settings). Prints a Markdown table and writes, into
RESULT unless --figure says otherwise, identity_worst.jpg: the five faces
SR loses most on, each as bicubic | SR | HR.
"""
import argparse

from data.constants import DATASET_MODES
from metrics.identity_study import FIGURE, WORST, run


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.identity_study", description=__doc__.split("\n\n")[0])
    p.add_argument("result", help="test.py output folder (metrics.csv with dist_algo and bicubic_dist_algo)")
    p.add_argument("--test_path", required=True, help="the run's --test_path: where the HR faces are")
    p.add_argument("--dataset_mode", default="folder", choices=DATASET_MODES, help="the run's --dataset_mode")
    p.add_argument("--figure", default=None, help=f"JPEG of the {WORST} worst faces (default RESULT/{FIGURE})")
    return p.parse_args(argv)


def main(argv=None):
    """Parse `argv` (sys.argv's if None) and run; returns the result."""
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
