"""Real-world photos: face detection, alignment to the training frame, composing.

Synthetic photos only: the bundled aligned CelebA samples (datasets/test),
centre-cropped to 178x178 as in training, are pasted into a smooth random
background at known centres, sizes and rotations, so the true training
frame of every face in the photo is known. MTCNN runs on one 340x480 photo
(once for the main result, a few more times for the variants).
"""
import glob
import os

import cv2
import numpy as np
import pytest

from data import alignment as al
from data.images import read_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = {os.path.basename(p): p for p in glob.glob(os.path.join(ROOT, "datasets", "test", "*.jpg"))}
PHOTO_SHAPE = (340, 480)
MIN_FACE = 30
# (sample, frame side in the photo, centre x, centre y, rotation in degrees)
# The samples chosen are ones whose own CelebA framing is close to the mean
# (IoU 0.95-0.99 between their frame and the one their landmarks give;
# over 298 CelebA faces the mean is 0.956, 5% of faces are below 0.89).
PASTED = [
    ("002993.jpg", 176, 110, 120, 0),     # larger than 128: shrunk with INTER_AREA
    ("023497.jpg", 96, 290, 110, 18),
    ("006886.jpg", 72, 410, 250, -20),
    ("011527.jpg", 60, 250, 270, 0),      # box ~33 px: kept with --min_face 30
]
TINY = ("059948.jpg", 44, 90, 290, 0)     # box ~24 px: found, skipped with --min_face 30
OFFSET = 40.0


# ----------------------------------------------------------------- helpers

def celeba_frame(name, side):
    """The training framing of a sample: 178x178 centre crop, resized to side."""
    crop = read_image(SAMPLES[name])[20:198]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if side < 178 else cv2.INTER_LINEAR)


def background(seed, shape=PHOTO_SHAPE):
    rng = np.random.default_rng(seed)
    low = rng.uniform(30, 220, (4, 5, 3)).astype(np.float32)
    image = cv2.resize(low, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def paste_matrix(side, cx, cy, angle):
    """2x3 map: pixel of a side x side frame -> photo, rotated about the frame centre."""
    c = (side - 1) / 2
    matrix = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    matrix[:, 2] += (cx - c, cy - c)
    return matrix


def paste(photo, face, matrix):
    """Blend `face` into `photo` in place; returns the frame outline [4, 2] in the photo."""
    h, w = photo.shape[:2]
    side = face.shape[0]
    warped = cv2.warpAffine(face, matrix, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
    mask = cv2.warpAffine(np.ones((side, side), np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    photo[:] = np.clip(np.round(photo * (1 - mask) + warped * mask), 0, 255).astype(np.uint8)
    corners = np.array([[-0.5, -0.5], [side - 0.5, -0.5], [side - 0.5, side - 0.5], [-0.5, side - 0.5]])
    return corners @ matrix[:, :2].T + matrix[:, 2]


def true_alignment(side, matrix):
    """The photo -> 128 frame map of a face pasted with `matrix` (exact ground truth)."""
    k = al.FRAME / side
    to_128 = np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2]])
    return al.chain(to_128, cv2.invertAffineTransform(matrix))


def iou(a, b):
    a, b = np.float32(a), np.float32(b)
    inter, _ = cv2.intersectConvexConvex(a, b)
    return inter / (cv2.contourArea(a) + cv2.contourArea(b) - inter)


def bicubic_predict(lr):
    """A stand-in generator: bicubic x8 of the 16x16 input, brightened so pasted faces show."""
    lr = np.asarray(lr, np.float32)
    return np.stack([cv2.resize(x, (x.shape[1] * 8, x.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
                     for x in lr]) + OFFSET


def outside(outlines, shape, upscale, grow=1.25):
    """bool [H*u, W*u]: pixels outside every face outline enlarged `grow` x about its centre."""
    keep = np.ones(shape, np.uint8)
    for outline in outlines:
        centre = outline.mean(0)
        big = (outline - centre) * grow + centre
        cv2.fillConvexPoly(keep, np.round((big + 0.5) * upscale - 0.5).astype(np.int32), 0)
    return keep.astype(bool)


def make_photo(seed=0, tiny=True):
    photo = background(seed)
    outlines = []
    for name, side, cx, cy, angle in PASTED + ([TINY] if tiny else []):
        outlines.append(paste(photo, celeba_frame(name, side), paste_matrix(side, cx, cy, angle)))
    return photo, outlines


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def detector():
    return al.default_detector()


@pytest.fixture(scope="module")
def scene(detector):
    photo, outlines = make_photo()
    result = al.super_resolve_photo(photo, bicubic_predict, upscale=4, min_face=MIN_FACE, detector=detector)
    return photo, outlines, result


# ----------------------------------------------------------------- geometry (no detector)

def test_template_is_the_celeba_frame_layout():
    t = al.TEMPLATE_128
    assert t.shape == (5, 2)
    assert t[0, 0] < t[2, 0] < t[1, 0] and t[3, 0] < t[4, 0]        # image-left before image-right
    assert t[0, 1] < t[2, 1] < t[3, 1]                              # eyes, nose, mouth, top to bottom
    assert abs(t[[0, 1], 0].mean() - 63.5) < 1.5                    # centred horizontally
    assert 24 < t[1, 0] - t[0, 0] < 32                              # eye distance in a 128 frame


def test_similarity_matrix_recovers_a_known_transform():
    truth = paste_matrix(128, 200, 150, 23.0)
    truth[:, :2] *= 0.6
    points = al.TEMPLATE_128 @ truth[:, :2].T + truth[:, 2]
    estimate = al.similarity_matrix(al.TEMPLATE_128, points)
    np.testing.assert_allclose(estimate, truth, atol=1e-9)
    np.testing.assert_allclose(al.matrix_scale(estimate), 0.6)


@pytest.mark.parametrize("side,angle", [(96, 0), (96, 17), (256, -15)])
def test_align_with_true_landmarks_gives_the_training_frame(side, angle):
    name = "006193.jpg"
    photo = background(1, (400, 400))
    matrix = paste_matrix(side, 200, 200, angle)
    paste(photo, celeba_frame(name, side), matrix)
    to_128 = true_alignment(side, matrix)
    inverse = cv2.invertAffineTransform(to_128)
    landmarks = al.TEMPLATE_128 @ inverse[:, :2].T + inverse[:, 2]
    crop, found = al.align(photo, landmarks)
    np.testing.assert_allclose(found, to_128, atol=1e-6)
    diff = np.abs(crop.astype(float) - celeba_frame(name, 128).astype(float))[8:-8, 8:-8]
    assert diff.mean() < (4 if side < 128 else 2), diff.mean()  # a 96 px paste has lost detail


def test_feather_mask_is_zero_on_the_border_and_one_inside():
    mask = al.feather_mask()
    assert mask.shape == (128, 128)
    assert mask[0].max() == 0 and mask[-1].max() == 0 and mask[:, 0].max() == 0 and mask[:, -1].max() == 0
    assert mask[30:98, 30:98].min() > 0.999 and mask.max() <= 1.0


def test_compose_puts_a_face_back_where_it_was_taken():
    photo = background(2, (200, 240))
    matrix = paste_matrix(128, 120, 100, 12)
    paste(photo, celeba_frame("002993.jpg", 128), matrix)
    to_128 = true_alignment(128, matrix)
    back = cv2.invertAffineTransform(to_128)
    crop, _ = al.align(photo, al.TEMPLATE_128 @ back[:, :2].T + back[:, 2])
    for upscale in (1, 3):
        composed, mask = al.compose(photo, [crop], [to_128], upscale, return_mask=True)
        bicubic = cv2.resize(photo, (240 * upscale, 200 * upscale), interpolation=cv2.INTER_CUBIC)
        assert composed.shape == bicubic.shape
        inside = mask > 0.99
        assert inside.sum() > 0.5 * (100 * upscale) ** 2
        err = np.abs(composed.astype(float) - bicubic.astype(float))[inside].mean()
        # the same face mapped back half a pixel off, to show the check can fail
        shifted = al.compose(photo, [crop], [al.chain(np.array([[1, 0, 0.5], [0, 1, 0.5]]), to_128)], upscale)
        err_shifted = np.abs(shifted.astype(float) - bicubic.astype(float))[inside].mean()
        assert err < 2.5 and err < 0.4 * err_shifted, (upscale, err, err_shifted)  # 1.7-1.8 vs 9.1
        np.testing.assert_array_equal(composed[mask == 0], bicubic[mask == 0])


def test_too_large_a_request_is_refused_with_the_sizes():
    photo = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(al.PhotoTooLargeError) as err:
        al.super_resolve_photo(photo, bicubic_predict, upscale=30, detector=object())
    message = str(err.value)
    assert "12000x9000" in message and "108.0 MP" in message and "100 MP" in message
    assert "--upscale 28" in message
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="whole number"):
        al.check_output_size(300, 400, 2.5)
    assert al.check_output_size(300, 400, 8) == (2400, 3200)


# ----------------------------------------------------------------- with MTCNN

def test_every_face_is_found_and_aligned_to_its_frame(scene):
    photo, outlines, result = scene
    assert len(result.faces) == len(PASTED)
    assert result.skipped_small == 1
    assert "4 faces, 1 skipped" in result.report("photo")
    found = [al.frame_corners(m) for m in result.matrices]
    for (name, side, *_), outline in zip(PASTED, outlines):
        scores = [iou(outline, f) for f in found]
        k = int(np.argmax(scores))
        assert scores[k] >= 0.9, (name, side, scores[k])
        assert abs(result.frame_sizes[k] / side - 1) < 0.1, (name, side, result.frame_sizes[k])
    for face, matrix in zip(result.faces, result.matrices):
        assert face.size >= MIN_FACE
        assert face.landmarks[0, 0] < face.landmarks[1, 0]  # "left eye" is the image-left one
        assert abs(np.linalg.det(matrix[:, :2])) > 0


def test_crops_inputs_and_outputs_have_the_model_sizes(scene):
    _, _, result = scene
    for crop, lr, sr in zip(result.aligned, result.lr, result.sr):
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
        assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
        assert sr.shape == (128, 128, 3) and sr.dtype == np.uint8
    np.testing.assert_array_equal(result.lr[0], al.make_lr(result.aligned[0]))


def test_composed_photo_is_bicubic_away_from_the_faces(scene):
    photo, outlines, result = scene
    h, w = photo.shape[:2]
    assert result.composed.shape == (h * 4, w * 4, 3) and result.composed.dtype == np.uint8
    bicubic = cv2.resize(photo, (w * 4, h * 4), interpolation=cv2.INTER_CUBIC)
    away = outside(outlines, (h * 4, w * 4), 4)
    np.testing.assert_array_equal(result.composed[away], bicubic[away])
    _, mask = al.compose(photo, result.sr, result.matrices, 4, return_mask=True)
    np.testing.assert_array_equal(result.composed[mask == 0], bicubic[mask == 0])
    # and the faces were really pasted (the stand-in generator brightens them)
    core = mask > 0.99
    assert core.sum() > 0
    assert (result.composed[core].astype(float) - bicubic[core]).mean() > OFFSET / 2


def test_min_face_zero_keeps_the_tiny_face(scene, detector):
    photo, outlines, _ = scene
    faces, skipped = al.detect_faces(photo, min_face=0, detector=detector)
    assert skipped == 0 and len(faces) == len(PASTED) + 1
    tiny = min(faces, key=lambda f: f.size)
    _, matrix = al.align(photo, tiny.landmarks)
    assert iou(outlines[-1], al.frame_corners(matrix)) >= 0.8  # 44 px frame, 24 px box


def test_photo_without_faces_is_reported_not_an_error(detector):
    photo = background(3, (200, 260))
    result = al.super_resolve_photo(photo, bicubic_predict, min_face=MIN_FACE, detector=detector)
    assert result.faces == [] and result.skipped_small == 0 and result.sr == []
    assert result.report("empty.jpg") == "empty.jpg: no face found"
    assert result.composed.shape == (1600, 2080, 3)  # default upscale 8
    np.testing.assert_array_equal(result.composed,
                                  cv2.resize(photo, (2080, 1600), interpolation=cv2.INTER_CUBIC))


def test_random_weight_generator_and_written_outputs(scene, detector, tmp_path):
    from models.generator import build_generator

    photo, _, _ = scene
    generator = build_generator()
    result = al.super_resolve_photo(photo, lambda lr: generator(lr, training=False), upscale=2,
                                    min_face=MIN_FACE, detector=detector)
    assert len(result.sr) == len(PASTED) and result.composed.shape == (680, 960, 3)
    written = al.write_outputs(result, photo, str(tmp_path), "group")
    assert read_image(str(tmp_path / "group_SR.png")).shape == (680, 960, 3)
    for k in range(len(PASTED)):
        assert read_image(str(tmp_path / "group_faces" / f"{k}_SR.png")).shape == (128, 128, 3)
    assert os.path.getsize(tmp_path / "group_before_after.png") > 0
    assert len(written) == 2 + 2 * len(PASTED)


def test_test_py_real_world_cli(tmp_path):
    """python test.py --real_world on a folder: a photo with faces, one without, one unreadable."""
    import json
    import subprocess
    import sys

    from models import build_generator, save_generator
    from utils import write_png

    photos = tmp_path / "photos"
    photos.mkdir()
    photo, _ = make_photo(seed=3, tiny=False)
    write_png(str(photos / "group.png"), photo)
    write_png(str(photos / "empty wall.png"), background(4, (120, 90)))
    (photos / "broken.jpg").write_bytes(b"not an image")
    weights = tmp_path / "generator.weights.h5"
    save_generator(build_generator(), str(weights))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "test.py", "--real_world", "--test_path", str(photos), "--weight_path",
                             str(weights), "--image_save_path", str(out), "--upscale", "2", "--gpu_ids", "-1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "real_world" and summary["photos"] == 2 and summary["skipped"] == 1
    assert summary["faces"] == len(PASTED) and summary["photos_without_face"] == 1
    composed = read_image(str(out / "group_SR.png"))
    assert composed.shape == (photo.shape[0] * 2, photo.shape[1] * 2, 3)
    assert read_image(str(out / "empty wall_SR.png")).shape == (240, 180, 3)
    assert sorted(os.listdir(out / "group_faces")) == sorted(
        f"{k}_{kind}.png" for k in range(len(PASTED)) for kind in ("SR", "LR"))
    assert "broken.jpg" in result.stderr and "no face" in result.stdout
