"""Training faces from ordinary photos, and the measures that decide which ones are kept.

`examine_photo` finds every face with the real-photo detector
(`detect.detect_faces`) and frames each one exactly as the real-photo
path does (`align.frame_matrix`, `align.face_in_frame`): a 128x128
HR face, the frame the training pipeline's folder mode reads as it is. A face
is kept unless

* its frame spans fewer than MIN_FRAME photo px ("too small"): the 128 px HR
  face would be interpolated up from fewer pixels, so it would teach the
  generator to produce interpolation blur instead of detail;
* its `sharpness` is under MIN_SHARPNESS ("too blurred");
* its `signature` is within DUPLICATE_DISTANCE of a face already kept
  ("duplicate": a re-saved, resized or re-encoded copy of a photo).

The thresholds' measurements are in docs/training.md, "Preparing your own faces".
"""
import cv2
import numpy as np

from data.constants import FRAME
from data.images import read_image
from faces import align, detect, paste

WRITTEN, TOO_SMALL, TOO_BLURRED, DUPLICATE = "written", "too_small", "too_blurred", "duplicate"
MIN_FRAME = FRAME   # from here up the 128 frame takes at least one photo pixel per frame pixel
# Faces measured by the ratio below (docs/training.md): sharp CelebA faces lie above,
# the same faces upsampled 3x or blurred by a 1 px Gaussian below.
MIN_SHARPNESS = 4.0
REBLUR_SIGMA = 1.0        # frame px
SIGNATURE_SIDE = 16
# Between unit-norm signatures (0 equal, sqrt(2) uncorrelated). Set from re-encoded, resized
# copies of faces against pairs of distinct faces (docs/training.md): a missed copy costs a face
# seen twice, a false match a face lost, so it sits nearer the copies than the distinct pairs.
DUPLICATE_DISTANCE = 0.35
_FACE = paste.face_mask() >= 0.5   # the face, not its frame's background


def _grey(face):
    return cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY).astype(np.float32)


def sharpness(face):
    """Variance of the Laplacian over the face of a 128x128 RGB frame, divided by the same after a
    Gaussian blur of REBLUR_SIGMA px.

    The plain variance of the Laplacian grows with a face's contrast and texture as much as with its
    focus; the ratio cancels both: a sharp face loses most of its Laplacian to the blur, a face that
    is already blurred loses little (ratio near 1).
    """
    grey = _grey(face)
    before = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[_FACE].var()
    after = cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), REBLUR_SIGMA), cv2.CV_32F, ksize=1)[_FACE].var()
    return float(before / max(after, 1e-6))


def signature(face):
    """float32 [SIGNATURE_SIDE ** 2]: the frame in grey averaged down, zero mean, unit norm.

    Faces in one frame differ mostly in their coarse shading; the normalisation ignores
    brightness and contrast, which re-encoding and resizing a photo change.
    """
    small = cv2.resize(_grey(face), (SIGNATURE_SIDE, SIGNATURE_SIDE), interpolation=cv2.INTER_AREA).ravel()
    small -= small.mean()
    return small / max(float(np.linalg.norm(small)), 1e-6)


class Signatures:
    """The signatures of the faces kept so far; `near` finds a near-duplicate by a linear scan."""

    def __init__(self):
        self._rows = np.zeros((64, SIGNATURE_SIDE ** 2), np.float32)
        self._count = 0

    def __len__(self):
        return self._count

    def near(self, sig):
        rows = self._rows[:self._count]
        return bool(len(rows) and np.min(np.linalg.norm(rows - sig, axis=1)) < DUPLICATE_DISTANCE)

    def add(self, sig):
        if self._count == len(self._rows):   # doubling: adding n faces copies O(n) rows in all
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[self._count] = sig
        self._count += 1


def examine_photo(photo, detector=None):
    """Every face of a uint8 RGB photo, left to right: dicts of index, frame_px, confidence, face
    (uint8 [128, 128, 3], framed as the real-photo path frames it) and its sharpness."""
    found = []
    for k, face in enumerate(detect.detect_faces(photo, detector)):
        matrix = align.frame_matrix(face.landmarks)
        framed = align.face_in_frame(photo, matrix)
        found.append({"index": k, "frame_px": align.frame_side(matrix), "confidence": face.confidence,
                      "face": framed, "sharpness": sharpness(framed)})
    return found


def examine_file(path):
    """(path, faces of `examine_photo` or None, why the file could not be read or None)."""
    try:
        photo = read_image(path)
    except ValueError as err:   # ImageReadError and unsupported layouts
        return path, None, str(err)
    return path, examine_photo(photo), None


def status(face, kept):
    """Why a face of `examine_photo` is skipped, or WRITTEN; `kept` (Signatures) gets a written face's signature."""
    if face["frame_px"] < MIN_FRAME:
        return TOO_SMALL
    if face["sharpness"] < MIN_SHARPNESS:
        return TOO_BLURRED
    sig = signature(face["face"])
    if kept.near(sig):
        return DUPLICATE
    kept.add(sig)
    return WRITTEN
