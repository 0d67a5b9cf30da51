"""Geometry of faces in ordinary photos: detection, the training frame, warps in and out.

The generator only knows one framing: an aligned CelebA image (178x218),
centre-cropped to 178x178 and resized to 128x128, whose 16x16 input is that
frame averaged over 8x8 blocks (`data.degradation.degrade`). For a photo,

* `detect_faces` finds faces and their 5 landmarks with MTCNN (the `mtcnn`
  package's networks, run by `VotedCascade`) on a copy of the photo enlarged up
  to DETECT_UPSCALE times, so faces below MTCNN's 12 px window are found too;
  boxes and landmarks are mapped back;
* `frame_matrix` is the similarity that puts a face's eyes and mouth centre on
  those of `TEMPLATE_128`: photo pixels -> the 128x128 frame;
* `input_crop` gives the generator the face as the photo holds it: a square
  of the photo's own pixels about the frame, shifted by whole pixels, so
  nothing is interpolated before the model sees it;
* `paste` warps the 8x output back into the photo upscaled x`upscale` once
  (a whole-pixel shift at 8), blended by `face_mask` placed by the frame: the
  face, not its frame's corners.

The pipeline around them (what is super-resolved, the report) is data/photo.py.

Coordinates: pixel centres at integer positions, as `cv2.warpAffine` uses
them. `cv2.resize` by an integer factor u maps x -> u * x + (u - 1) / 2.
"""
import dataclasses
import math

import cv2
import numpy as np
import tensorflow as tf
from mtcnn import MTCNN
from mtcnn.stages import StageONet, StagePNet, StageRNet
from mtcnn.stages.base import StageBase
from mtcnn.utils.bboxes import (
    adjust_bboxes,
    generate_bounding_box,
    pick_matches,
    replace_confidence,
    resize_to_square,
    upscale_bboxes,
)
from mtcnn.utils.images import apply_scales, build_scale_pyramid, extract_patches
from mtcnn.utils.landmarks import adjust_landmarks

from data.constants import CELEBA_CROP, CELEBA_SIZE, FRAME, SCALE
from data.images import list_images, read_image
from utils import to_uint8

MAX_OUTPUT_PIXELS = 100_000_000   # composed photos above this are refused
INPUT = FRAME // SCALE     # the generator's input side (16)
DETECTOR_WINDOW = 12       # MTCNN's P-Net window: the smallest box it sees in the image it is given
# Faces are looked for in the photo enlarged (bicubic) this many times, so a
# face box of DETECTOR_WINDOW / DETECT_UPSCALE = 4 photo px reaches the P-Net
# window; the enlarged copy is capped at DETECT_MAX_PIXELS (a big photo is
# enlarged less, or not at all, and then its smallest faces are not found).
DETECT_UPSCALE = 3
DETECT_MAX_PIXELS = 6_000_000
# MTCNN's cascade (mtcnn 1.0 weights and stage thresholds) without the NMS that mtcnn
# runs after P-Net and R-Net. On faces of 4 to 8 photo px (frames of 11 to 16) the box
# those NMS keep, the best-scored by a weak net, is often one O-Net rejects, while a
# neighbour it suppressed would pass. On the group photos of `scripts.real_world_bench`
# (its tiling, shrink and matching), 300 faces of celeba-unseen's celeb_185..194, found
# at 8x / 11x / 16x: stock mtcnn 98.3% / 91.3% / 63.7%; without any NMS before O-Net
# 99.7% / 97.0% / 85.3%. O-Net then also accepts more non-faces (false faces at 2x / 8x
# / 11x: 7 / 4 / 0 stock, 23 / 7 / 2 without NMS), and those are rarely confirmed by
# other boxes: a face is kept only when at least DETECT_VOTES O-Net boxes overlap it
# (IoU > VOTE_IOU): 98.7% / 95.3% / 75.7% with 6 / 0 / 0 false faces (4x, 6x: 2, 1;
# stock 4, 3). People not used for choosing this (celeb_195..199, 144 faces): 97.2% /
# 92.4% / 70.8% (stock 95.8% / 83.3% / 61.1%), 1 false face at 2x..16x (stock 7); but 4x
# 96.5% (stock 98.6%: faces O-Net scores under 0.93 that fewer than DETECT_VOTES boxes
# confirm); 120 faces of celeba-subset/test: 98.3% / 95.8% / 73.3% (stock 95.0% / 91.7% /
# 65.8%). Detection takes 3-4x stock mtcnn's time on those small photos (0.27 s vs
# 0.08 at 8x, 2 CPUs), 1.2x on a 654x1424 photo enlarged 2x; memory as stock.
PNET_THRESHOLD, RNET_THRESHOLD, ONET_THRESHOLD = 0.6, 0.7, 0.8
PYRAMID_FACTOR = 0.709
FACE_OVERLAP = 0.7   # intersection / smaller box above which two O-Net boxes are one face (mtcnn's own)
VOTE_IOU = 0.5
DETECT_VOTES = 4
# Without NMS, thousands of proposals can reach R-Net: they go through in batches so memory stays bounded.
CASCADE_BATCH = 1024
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # image left/right

# Mean MTCNN landmarks of the training frame, in the 128x128 frame (x, y),
# pixel-centre coordinates, order of LANDMARK_NAMES ("left" = image left).
# Derived with `derive_template` from 300 images drawn at random (seed 0)
# from a 5,100-image sample of aligned CelebA (img_align_celeba, 178x218):
# MTCNN (mtcnn 1.0.0, default thresholds) on the whole 178x218 image, the
# most confident face kept, landmarks mapped through the 178x178 centre crop
# (rows 20..197) and the 178 -> 128 INTER_LINEAR resize. Regenerate:
#     python -c "from data.alignment import derive_template as d; print(d('CELEBA_DIR'))"
# Result: 298 of the 300 had a face; mean distance of single faces to these
# points: eyes 1.2-1.3 px, nose 4.6 px, mouth corners 2.1-2.2 px (of 128).
TEMPLATE_128 = np.array([
    [49.737, 65.506],   # left eye
    [77.271, 65.573],   # right eye
    [63.523, 82.852],   # nose tip
    [50.993, 95.074],   # mouth, left corner
    [75.797, 95.013],   # mouth, right corner
], np.float64)
# The similarity is fitted to the eyes and the mouth centre (mean of the two
# corners), not to all 5 points: the nose tip moves with head pose (4.6 px
# spread) and the CelebA frames were not placed by it. Measured on the same
# 298 faces (each face's own landmarks -> transform -> its frame outline vs
# the true frame): mean IoU 0.956 (5th percentile 0.891) for eyes + mouth
# centre, 0.924 (0.823) for the 5 points weighted equally. The rest is how
# much CelebA's own framing varies around any landmark rule.


class PhotoTooLargeError(ValueError):
    """The composed photo (input size x upscale) would exceed the pixel limit."""


@dataclasses.dataclass
class Face:
    """One detected face: box (x1, y1, x2, y2), landmarks [5, 2] (x, y), confidence."""
    box: np.ndarray
    landmarks: np.ndarray
    confidence: float

    @property
    def size(self):
        """The longer side of the detector's box, in photo pixels (what --min_face compares)."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


# ----------------------------------------------------------------- template

def celeba_to_frame(points, size=FRAME):
    """(x, y) points of a 178x218 aligned CelebA image -> the size x size training frame."""
    points = np.asarray(points, np.float64)
    top = (CELEBA_SIZE[0] - CELEBA_CROP) // 2
    left = (CELEBA_SIZE[1] - CELEBA_CROP) // 2
    scale = size / CELEBA_CROP
    return (points - [left, top] + 0.5) * scale - 0.5


def derive_template(celeba_dir, count=300, seed=0, detector=None):
    """Mean landmarks [5, 2] of `count` random 178x218 aligned CelebA images under `celeba_dir`.

    Also prints how far single faces are from the mean (pixels in the frame).
    """
    paths = [p for p in list_images(celeba_dir)]
    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in rng.choice(len(paths), min(count, len(paths)), replace=False)]
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
    return mean


# ----------------------------------------------------------------- detection

class VotedCascade(StageBase):
    """MTCNN's P-, R- and O-Net in one mtcnn stage: no NMS before O-Net; O-Net's faces need DETECT_VOTES boxes.

    Rows as mtcnn's: [image, x1, y1, x2, y2, confidence, x1..x5, y1..y5] (see the constants above for why).
    """

    def __init__(self):
        super().__init__(stage_name="voted cascade", stage_id=1)
        self.pnet, self.rnet, self.onet = StagePNet().model, StageRNet().model, StageONet().model

    def __call__(self, images_normalized, images_oshapes, min_face_size=DETECTOR_WINDOW, **_):
        batch = images_normalized.shape[0]
        pyramids = [build_scale_pyramid(shape[1], shape[0], min_face_size=min_face_size, scale_factor=PYRAMID_FACTOR)
                    for shape in images_oshapes]
        scaled, scales = apply_scales(images_normalized, pyramids)
        boxes = [upscale_bboxes(generate_bounding_box(*self.pnet(image), PNET_THRESHOLD), np.full(batch, scale))
                 for image, scale in zip(scaled, scales)]
        if not boxes:   # an image under P-Net's 12 px window has no pyramid level at all
            return np.empty((0, 16))
        boxes = resize_to_square(np.concatenate(boxes))
        if len(boxes):
            offsets, scores = self._run(self.rnet, images_normalized, boxes, 24)
            boxes = adjust_bboxes(replace_confidence(boxes, scores), offsets)
            boxes = resize_to_square(pick_matches(boxes, score_threshold=RNET_THRESHOLD))
        if not len(boxes):
            return np.empty((0, 16))
        offsets, landmarks, scores = self._run(self.onet, images_normalized, boxes, 48)
        landmarks = adjust_landmarks(landmarks, boxes)
        boxes = np.concatenate([adjust_bboxes(replace_confidence(boxes, scores), offsets), landmarks], axis=-1)
        return vote(pick_matches(boxes, scores_column=5, score_threshold=ONET_THRESHOLD))

    @staticmethod
    def _run(net, images, boxes, side):
        parts = [net(extract_patches(images, boxes[i:i + CASCADE_BATCH], expected_size=(side, side)))
                 for i in range(0, len(boxes), CASCADE_BATCH)]
        return [tf.concat([p[k] for p in parts], axis=0) for k in range(len(parts[0]))]


def vote(rows):
    """Greedy NMS of O-Net rows (best first), keeping a face only where >= DETECT_VOTES rows overlap it."""
    order = np.argsort(-rows[:, 5], kind="stable")
    box = rows[:, 1:5]
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    kept = []
    while len(order):
        best, rest = order[0], order[1:]
        w = np.clip(np.minimum(box[best, 2], box[rest, 2]) - np.maximum(box[best, 0], box[rest, 0]), 0, None)
        h = np.clip(np.minimum(box[best, 3], box[rest, 3]) - np.maximum(box[best, 1], box[rest, 1]), 0, None)
        inter = w * h
        same = (inter > FACE_OVERLAP * np.minimum(area[best], area[rest])) & (rows[rest, 0] == rows[best, 0])
        votes = 1 + np.count_nonzero(inter[same] > VOTE_IOU * (area[best] + area[rest][same] - inter[same]))
        if votes >= DETECT_VOTES:
            kept.append(best)
        order = rest[~same]
    return rows[kept].reshape(-1, rows.shape[1])


_DETECTOR = None


def default_detector():
    """One shared MTCNN (weights ship with the package) running `VotedCascade`, on the GPU when there is one."""
    global _DETECTOR
    if _DETECTOR is None:
        device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
        _DETECTOR = MTCNN(stages=[VotedCascade()], device=device)
    return _DETECTOR


def detection_upscale(height, width):
    """The whole factor the photo is enlarged by for detection (DETECT_UPSCALE, less for big photos)."""
    fits = math.isqrt(int(DETECT_MAX_PIXELS // max(1, height * width)))
    return max(1, min(DETECT_UPSCALE, fits))


def detect_faces(photo, detector=None, upscale=None):
    """Every face MTCNN finds in a uint8 RGB photo [H, W, 3], ordered left to right.

    MTCNN runs on the photo enlarged `upscale` times (bicubic; default
    `detection_upscale`) with its smallest window, so it finds face boxes down
    to DETECTOR_WINDOW / upscale photo px; boxes and landmarks are mapped back
    to the photo's pixel-centre coordinates.
    """
    photo = _check_photo(photo)
    detector = detector or default_detector()
    h, w = photo.shape[:2]
    upscale = detection_upscale(h, w) if upscale is None else int(upscale)
    image = photo if upscale == 1 else cv2.resize(photo, (w * upscale, h * upscale),
                                                  interpolation=cv2.INTER_CUBIC)
    rows = detector.detect_faces(image, output_type="numpy", box_format="xyxy",
                                 min_face_size=DETECTOR_WINDOW)
    rows = np.asarray(rows, np.float64).reshape(-1, 16)

    def back(v):  # enlarged copy -> photo (see module doc)
        return (v - (upscale - 1) / 2) / upscale

    faces = []
    for row in rows:
        # numpy layout of mtcnn 1.0: [image, x1, y1, x2, y2, confidence, x1..x5, y1..y5]
        landmarks = np.stack([row[6:11], row[11:16]], axis=1)
        faces.append(Face(box=back(row[1:5]), landmarks=back(landmarks), confidence=float(row[5])))
    faces.sort(key=lambda f: (f.box[0] + f.box[2], f.box[1] + f.box[3]))
    return faces


# ----------------------------------------------------------------- alignment

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


def input_crop(photo, matrix, grow=1.25):
    """(crop uint8 [n, n, 3], photo -> output map 2x3) for the face whose 128-frame map is `matrix`.

    The generator's input is the photo's own pixels: an n x n square about the
    face's frame centre at the photo's resolution, shifted by whole pixels, with
    n = max(16, frame side x `grow`). Any other similarity would resample the
    face before the model sees it, and that blur costs more than the model's
    whole gain (docs/evaluation.md, 'Real photos'); the generator is convolutional, so
    a face whose frame is not exactly 16 px is still an 8x super-resolution of
    what the photo holds. The returned map takes photo pixel centres to the
    generator's 8n x 8n output (input pixel i covers output pixels 8i..8i+7).
    Pixels beyond the photo's edge repeat the edge.
    """
    n = max(INPUT, math.ceil(frame_side(matrix) * grow - 1e-6))
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


# The face inside the frame: an ellipse about the template's landmarks (eyes at
# y 65.5, mouth at 95 of 128: brows to chin, cheek to cheek; 0 from 4 px short of
# the frame's edge), with a
# soft edge so the pasted face meets the bicubic photo without a seam.
FACE_CENTRE = (63.5, 72.0)
FACE_AXES = (38.0, 47.0)
FACE_FEATHER = 8.0   # px of the 128 frame over which the weight falls from 1 to 0


def face_mask(size=FRAME):
    """float32 [size, size] blend weights of the face in the frame: 1 inside, 0 beyond the soft edge."""
    k = size / FRAME
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = (np.array(FACE_CENTRE) + 0.5) * k - 0.5
    ax, ay = np.array(FACE_AXES) * k
    # signed distance (approx.) outside the ellipse, in frame px
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    outside = (r - 1) * min(ax, ay)
    weight = np.clip(0.5 - outside / (FACE_FEATHER * k), 0, 1)
    return (weight * weight * (3 - 2 * weight)).astype(np.float32)   # smoothstep: no kink at the edges


def paste(canvas, image, image_matrix, face_matrix, upscale):
    """Blend a super-resolved `image` into `canvas` (the photo upscaled x`upscale`) over the face, in place.

    image_matrix: photo -> image pixels (from `input_crop`); face_matrix:
    photo -> 128 frame, which places `face_mask`. One warp (INTER_CUBIC) takes
    the image to the canvas, a pure whole-pixel shift when upscale is 8; where
    the image lands smaller than it is, it is low-passed first so it does not
    alias. Pixels the mask does not reach keep the canvas exactly. Returns the
    placed mask (float32 [H, W]).
    """
    image = np.asarray(image, np.float32)
    to_out = output_matrix(image_matrix, upscale)
    shrink = 1.0 / matrix_scale(to_out)   # image px per canvas px
    if shrink > 1:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=0.4 * shrink)
    mask_to_out = output_matrix(face_matrix, upscale)
    out_h, out_w = canvas.shape[:2]
    corners = np.array([[-1, -1], [FRAME, -1], [FRAME, FRAME], [-1, FRAME]], np.float64)
    mapped = corners @ mask_to_out[:, :2].T + mask_to_out[:, 2]
    x0, y0 = np.maximum(np.floor(mapped.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(mapped.max(0)).astype(int) + 2, [out_w, out_h])
    placed = np.zeros((out_h, out_w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return placed
    shift = np.array([[0, 0, x0], [0, 0, y0]], np.float64)
    m = cv2.warpAffine(face_mask(), mask_to_out - shift, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped = cv2.warpAffine(image, to_out - shift, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    base = canvas[y0:y1, x0:x1]
    blend = to_uint8(base * (1 - m[..., None]) + warped * m[..., None])
    canvas[y0:y1, x0:x1] = np.where(m[..., None] > 0, blend, base)
    placed[y0:y1, x0:x1] = m
    return placed


# ----------------------------------------------------------------- photo size

def check_output_size(height, width, upscale, max_pixels=MAX_OUTPUT_PIXELS):
    """Raise PhotoTooLargeError (a ValueError) when H*u x W*u is over `max_pixels`."""
    if int(upscale) != upscale or upscale < 1:
        raise ValueError(f"--upscale must be a whole number >= 1, got {upscale}")
    upscale = int(upscale)
    out_h, out_w = height * upscale, width * upscale
    if out_h * out_w > max_pixels:
        largest = int(math.isqrt(int(max_pixels // max(1, height * width))))
        hint = (f"use --upscale {largest} or less, or a smaller photo" if largest >= 1
                else "downscale the photo first")
        raise PhotoTooLargeError(
            f"a {width}x{height} photo upscaled x{upscale} would be {out_w}x{out_h} "
            f"({out_w * out_h / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP limit: {hint}")
    return out_h, out_w


def _check_photo(photo):
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB photo [H, W, 3], got {photo.dtype} {photo.shape}")
    return np.ascontiguousarray(photo)
