"""Face region metrics with dlib, as the `face_recognition` package [22] does it.

The EIPNet paper (Sec. 4.3) crops the face box that face_recognition's HOG
detector finds on the HR image, applies the same box to the SR image and
measures PSNR/SSIM on the crops (FR-PSNR, FR-SSIM); images whose HR has no
detected face are left out. Its identity test (Table 7, "algorithm") compares
face_recognition's 128-d dlib descriptors.

dlib is called directly (face_recognition itself is not needed):

* detector: ``dlib.get_frontal_face_detector()`` (HOG), ``detector(img, UPSAMPLE)``;
  face_recognition's ``face_locations`` default is 1 upsample, which is also
  what works best on the 128x128 CelebA HR (measured on the HR faces of datasets/test);
* box = face_recognition's (top, right, bottom, left) ``css`` reordered to
  ``(top, bottom, left, right)``, clipped to the image like its
  ``_trim_css_to_bounds``, used as ``img[top:bottom, left:right]``; with several
  detections the largest (clipped) box is taken;
* descriptor: as ``face_recognition.face_encodings(img, [box])`` (default
  ``model="small"``): the 5-point shape predictor on the given box, then
  ``compute_face_descriptor(img, shape, num_jitters=1)``.

The model files come from the ``face_recognition_models`` distribution, located
on disk without importing it (its ``__init__`` imports ``pkg_resources``, which
setuptools >= 81 no longer ships).
"""
import importlib.metadata
import importlib.util
import os

import numpy as np

from metrics.quality import SSIM_WINDOW, psnr, ssim

INSTALL_HINT = "pip install -r requirements-eval.txt"
UPSAMPLE = 1
NUM_JITTERS = 1
MODEL_FILES = {
    "shape_5": "shape_predictor_5_face_landmarks.dat",
    "shape_68": "shape_predictor_68_face_landmarks.dat",
    "encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


class EvalDependencyError(ImportError):
    """An optional evaluation dependency is missing; the message is one line."""


def _missing(package, extra=""):
    return EvalDependencyError(f"{package} is not installed{extra}: {INSTALL_HINT}")


def import_dlib():
    try:  # optional (requirements-eval.txt): only the face metrics need it
        import dlib
    except ImportError as err:
        raise _missing("dlib (PyPI dlib-bin)") from err
    return dlib


def models_dir():
    """Folder holding face_recognition_models' .dat files, found without importing it."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(p, "models") for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("face_recognition_models")
        for f in dist.files or ():
            if str(f).endswith(MODEL_FILES["encoder"]):
                candidates.append(os.path.dirname(str(dist.locate_file(f))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for folder in candidates:
        if all(os.path.isfile(os.path.join(folder, name)) for name in MODEL_FILES.values()):
            return folder
    raise _missing("face_recognition_models", " (or its .dat model files are missing)")


def model_path(key):
    return os.path.join(models_dir(), MODEL_FILES[key])


def clip_box(top, bottom, left, right, shape):
    """Clip a box to an image of ``shape`` (face_recognition's _trim_css_to_bounds)."""
    h, w = shape[:2]
    return max(int(top), 0), min(int(bottom), h), max(int(left), 0), min(int(right), w)


def box_area(box):
    top, bottom, left, right = box
    return max(bottom - top, 0) * max(right - left, 0)


def pick_box(boxes, shape):
    """The largest of the (top, bottom, left, right) boxes after clipping; None if none is non-empty."""
    clipped = [clip_box(*b, shape) for b in boxes]
    clipped = [b for b in clipped if box_area(b) > 0]
    if not clipped:
        return None
    return max(clipped, key=box_area)


def usable(box, min_side=SSIM_WINDOW):
    """Whether a box is big enough for FR-SSIM's 11x11 window (and so for FR-PSNR)."""
    if box is None:
        return False
    top, bottom, left, right = box
    return bottom - top >= min_side and right - left >= min_side


def crop(image, box):
    top, bottom, left, right = box
    return np.asarray(image)[top:bottom, left:right]


def fr_quality(sr, hr, box):
    """(FR-PSNR, FR-SSIM) of uint8 SR vs HR on ``box`` (top, bottom, left, right).

    Same conventions as metrics.quality.psnr/ssim on RGB (all channels, 11x11
    Gaussian SSIM, valid region). ``box`` is the one detected on the HR image;
    it is clipped to the image here. Returns (nan, nan) when there is no box or
    the clipped box is narrower than 11 px on a side (SSIM's window): such an
    image is left out of both FR means, so FR-PSNR and FR-SSIM always cover the
    same images.
    """
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"FR metrics of differently shaped images {sr.shape} and {hr.shape}")
    if box is not None:
        box = clip_box(*box, hr.shape)
    if not usable(box):
        return float("nan"), float("nan")
    a, b = crop(sr, box), crop(hr, box)
    return psnr(a, b), ssim(a, b)


class FaceTools:
    """dlib HOG face detector, shape predictor and ResNet face descriptor, loaded lazily.

    ``landmarks``: 5 (face_recognition.face_encodings' default "small" model)
    or 68 ("large"). ``upsample``: HOG detector upsampling (default 1).
    Raises EvalDependencyError on first use when dlib or the models are missing.
    """

    def __init__(self, upsample=UPSAMPLE, landmarks=5, num_jitters=NUM_JITTERS):
        if landmarks not in (5, 68):
            raise ValueError(f"landmarks must be 5 or 68, got {landmarks!r}")
        self.upsample = int(upsample)
        self.landmarks = landmarks
        self.num_jitters = int(num_jitters)
        self._dlib = None
        self._detector = None
        self._predictor = None
        self._encoder = None

    @property
    def dlib(self):
        if self._dlib is None:
            self._dlib = import_dlib()
        return self._dlib

    @property
    def detector(self):
        if self._detector is None:
            self._detector = self.dlib.get_frontal_face_detector()
        return self._detector

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = self.dlib.shape_predictor(model_path(f"shape_{self.landmarks}"))
        return self._predictor

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self.dlib.face_recognition_model_v1(model_path("encoder"))
        return self._encoder

    def check(self, descriptors=True):
        """Load everything now (raises EvalDependencyError early)."""
        self.detector  # noqa: B018 (each property loads its model)
        if descriptors:
            self.predictor  # noqa: B018
            self.encoder  # noqa: B018
        return self

    def detect_boxes(self, image, upsample=None):
        """All HOG detections as clipped (top, bottom, left, right) boxes."""
        img = _as_uint8_rgb(image)
        ups = self.upsample if upsample is None else int(upsample)
        rects = self.detector(img, ups)
        boxes = [clip_box(r.top(), r.bottom(), r.left(), r.right(), img.shape) for r in rects]
        return [b for b in boxes if box_area(b) > 0]

    def detect_box(self, hr_uint8, upsample=None):
        """The face box (top, bottom, left, right) on an HR uint8 RGB image, or None."""
        return pick_box(self.detect_boxes(hr_uint8, upsample), np.asarray(hr_uint8).shape)

    def descriptor(self, img_uint8, box):
        """dlib 128-d face descriptor (float64 [128]) of the face in ``box``."""
        img = _as_uint8_rgb(img_uint8)
        top, bottom, left, right = box
        rect = self.dlib.rectangle(int(left), int(top), int(right), int(bottom))
        shape = self.predictor(img, rect)
        return np.asarray(self.encoder.compute_face_descriptor(img, shape, self.num_jitters), np.float64)


def _as_uint8_rgb(image):
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"dlib face tools take uint8 images, got {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"dlib face tools take [H, W, 3] RGB images, got shape {img.shape}")
    return np.ascontiguousarray(img)

