"""dlib's face detection as the face metrics use it: it must find the faces that are there.

(tests/test_eval_metrics.py checks that it finds none in synthetic images, which a detector
that always returns None would pass too.)
"""
import os

import numpy as np
import pytest

dlib = pytest.importorskip("dlib", reason="dlib-bin not installed (pip install -r requirements-eval.txt)")
from conftest import ROOT  # noqa: E402
from metrics.face import FaceTools  # noqa: E402
from tests.references import released_hr as hr_face  # noqa: E402

SAMPLES = os.path.join(ROOT, "datasets", "test")


def test_the_face_of_every_sample_is_found_where_dlib_finds_it():
    tools = FaceTools()
    detector = dlib.get_frontal_face_detector()
    for name in sorted(os.listdir(SAMPLES)):
        hr = hr_face(os.path.join(SAMPLES, name))
        box = tools.detect_box(hr)
        assert box is not None, f"no face found in {name}, an aligned CelebA face"
        # dlib called directly, upsampling once as face_recognition does; the largest detection
        rects = sorted(detector(hr, 1), key=lambda r: r.width() * r.height())
        assert rects, name
        r = rects[-1]
        assert box == (max(r.top(), 0), min(r.bottom(), 128), max(r.left(), 0), min(r.right(), 128)), name
        # aligned CelebA: a face box of 50-90 px around the image's vertical centre line
        top, bottom, left, right = box
        assert 50 <= right - left <= 90 and abs((left + right) / 2 - 64) < 8, (name, box)


def test_a_face_moved_in_the_frame_moves_its_box():
    hr = hr_face(os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[0]))
    canvas = np.zeros((192, 192, 3), np.uint8)
    canvas[40:168, 20:148] = hr
    tools = FaceTools()
    top, bottom, left, right = tools.detect_box(hr)
    moved = tools.detect_box(canvas)
    assert moved is not None
    # dlib's HOG windows step by a few pixels and scales: the box's centre follows the face to within that
    centre = lambda b: np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2])  # noqa: E731
    assert np.abs(centre(moved) - centre((top, bottom, left, right)) - (40, 20)).max() <= 8, moved
