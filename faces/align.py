"""The training frame of a face in an ordinary photo, and the warps in and out of it.

The generator only knows one framing: an aligned CelebA image (178x218),
centre-cropped to 178x178 and resized to 128x128, whose 16x16 input is that
frame averaged over 8x8 blocks (`data.degradation.degrade`). For a photo,

* `frame_matrix` is the similarity that puts a face's eyes and mouth centre on
  those of `TEMPLATE_128`: photo pixels -> the 128x128 frame;
* `input_crop` gives the generator the face as the photo holds it: a square
  of the photo's own pixels about the frame, shifted by whole pixels, so
  nothing is interpolated before the model sees it.

Detection is faces/detect.py, pasting back faces/paste.py, the pipeline
around them (what is super-resolved, the report) faces/photo.py.

Coordinates: pixel centres at integer positions, as `cv2.warpAffine` uses
them. `cv2.resize` by an integer factor u maps x -> u * x + (u - 1) / 2.
"""
import math

import cv2
import numpy as np

from data.constants import CELEBA_CROP, CELEBA_SIZE, FRAME, LR_SIZE, SCALE

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image left/right
# Mean MTCNN landmarks of the training frame, in the 128x128 frame (x, y), pixel-centre
# coordinates, order of LANDMARK_NAMES ("left" = image left): `python -m scripts.derive_template`
# on aligned CelebA (docs/evaluation.md, "Real photos").
TEMPLATE_128 = np.array([
    [49.737, 65.506],   # left eye
    [77.271, 65.573],   # right eye
    [63.523, 82.852],   # nose tip
    [50.993, 95.074],   # mouth, left corner
    [75.797, 95.013],   # mouth, right corner
], np.float64)


def celeba_to_frame(points, size=FRAME):
    """(x, y) points of a 178x218 aligned CelebA image -> the size x size training frame."""
    points = np.asarray(points, np.float64)
    top = (CELEBA_SIZE[0] - CELEBA_CROP) // 2
    left = (CELEBA_SIZE[1] - CELEBA_CROP) // 2
    scale = size / CELEBA_CROP
    return (points - [left, top] + 0.5) * scale - 0.5


# The similarity is fitted to the eyes and the mouth centre (mean of the two corners), not to all
# 5 points: the nose tip moves with head pose, and the CelebA frames were not placed by it.
def alignment_points(landmarks):
    """[3, 2]: left eye, right eye, mouth centre of 5 landmarks (the points the similarity is fitted to)."""
    p = np.asarray(landmarks, np.float64)
    return np.stack([p[0], p[1], (p[3] + p[4]) / 2])


def similarity_matrix(src, dst):
    """2x3 least-squares similarity (rotation, uniform scale, shift; no reflection) mapping src -> dst.

    Umeyama (1991); src and dst are [N, 2] point sets, N >= 2.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("landmarks are all at one point")
    u, sigma, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / var_s
    shift = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def matrix_scale(matrix):
    """The uniform scale of a 2x3 similarity."""
    return math.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2])))


def invert(matrix):
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def chain(outer, inner):
    """2x3 matrix of `outer` after `inner` (x -> outer(inner(x)))."""
    o = np.vstack([outer, [0, 0, 1]])
    i = np.vstack([inner, [0, 0, 1]])
    return (o @ i)[:2]


def frame_corners(matrix, size=FRAME):
    """The aligned frame's outline [4, 2] in photo coordinates (pixel edges, clockwise)."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    inv = invert(matrix)
    return corners @ inv[:, :2].T + inv[:, 2]


def frame_matrix(landmarks):
    """2x3 similarity photo -> the 128x128 frame that puts the eyes and mouth centre on TEMPLATE_128's."""
    return similarity_matrix(alignment_points(landmarks), alignment_points(TEMPLATE_128))


def frame_side(matrix):
    """Side of the face's 128 frame in photo pixels (16: the generator's own input scale)."""
    return FRAME / matrix_scale(matrix)


def face_in_frame(photo, matrix):
    """uint8 [128, 128, 3]: the face whose 128-frame map is `matrix` (`frame_matrix`), as the
    real-photo path frames it. A larger face is warped at a whole multiple of 128 px first, then
    averaged down (INTER_AREA), so shrinking it does not alias."""
    k = max(1, math.ceil(frame_side(matrix) / FRAME))
    grid = np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2]], np.float64)  # frame -> its k-times copy
    face = cv2.warpAffine(photo, chain(grid, matrix), (FRAME * k, FRAME * k), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(face, (FRAME, FRAME), interpolation=cv2.INTER_AREA) if k > 1 else face


def input_crop(photo, matrix, grow=1.25, multiple=1):
    """(crop uint8 [n, n, 3], photo -> output map 2x3) for the face whose 128-frame map is `matrix`.

    The generator's input is the photo's own pixels: an n x n square about the
    face's frame centre at the photo's resolution, shifted by whole pixels, with
    n = max(16, frame side x `grow`), rounded up to a multiple of `multiple`. Any other similarity would resample the
    face before the model sees it, and that blur costs more than the model's
    whole gain (docs/evaluation.md, 'Real photos'); the generator is convolutional, so
    a face whose frame is not exactly 16 px is still an 8x super-resolution of
    what the photo holds. The returned map takes photo pixel centres to the
    generator's 8n x 8n output (input pixel i covers output pixels 8i..8i+7).
    Pixels beyond the photo's edge repeat the edge.
    """
    n = max(LR_SIZE, math.ceil(frame_side(matrix) * grow - 1e-6))
    n = -(-n // multiple) * multiple
    centre = invert(matrix) @ np.array([(FRAME - 1) / 2, (FRAME - 1) / 2, 1.0])
    x0, y0 = (int(round(c - (n - 1) / 2)) for c in centre)
    crop = cv2.warpAffine(photo, np.array([[1.0, 0, -x0], [0, 1.0, -y0]]), (n, n), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE)
    half = (SCALE - 1) / 2
    return crop, np.array([[SCALE, 0, half - SCALE * x0], [0, SCALE, half - SCALE * y0]], np.float64)


def output_matrix(matrix, upscale):
    """2x3 map of pixels of a frame (photo -> frame `matrix`) -> the photo upscaled x`upscale` (cv2.resize grid)."""
    up = np.array([[upscale, 0, (upscale - 1) / 2], [0, upscale, (upscale - 1) / 2]], np.float64)
    return chain(up, invert(matrix))
