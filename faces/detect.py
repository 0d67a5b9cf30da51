"""Faces and their 5 landmarks in ordinary photos: MTCNN's networks (the `mtcnn` package's), run by
`VotedCascade` on a copy of the photo enlarged up to DETECT_UPSCALE times, so faces below MTCNN's 12 px
window are found too; boxes and landmarks are mapped back.

Coordinates: pixel centres at integer positions, as `cv2.warpAffine` uses them. `cv2.resize` by an
integer factor u maps x -> u * x + (u - 1) / 2.
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

from faces.sizes import check_photo

DETECTOR_WINDOW = 12       # MTCNN's P-Net window: the smallest box it sees in the image it is given
# Faces are looked for in the photo enlarged (bicubic) this many times, so a
# face box of DETECTOR_WINDOW / DETECT_UPSCALE = 4 photo px reaches the P-Net
# window; the enlarged copy is capped at DETECT_MAX_PIXELS (a big photo is
# enlarged less, or not at all, and then its smallest faces are not found).
DETECT_UPSCALE = 3
DETECT_MAX_PIXELS = 6_000_000
# MTCNN's cascade (mtcnn 1.0 weights and stage thresholds) without the NMS that mtcnn runs after
# P-Net and R-Net: on faces of 4 to 8 photo px it keeps boxes O-Net rejects and drops neighbours
# O-Net would accept; a face is kept only where DETECT_VOTES O-Net boxes (IoU > VOTE_IOU) agree,
# which keeps out the non-faces O-Net accepts alone (docs/evaluation.md, "Real photos").
PNET_THRESHOLD, RNET_THRESHOLD, ONET_THRESHOLD = 0.6, 0.7, 0.8
PYRAMID_FACTOR = 0.709
FACE_OVERLAP = 0.7   # intersection / smaller box above which two O-Net boxes are one face (mtcnn's own)
VOTE_IOU = 0.5
DETECT_VOTES = 4
# Boxes under SMALL_FACE_BOX photo px (faces of frames up to ~26 px, JPEG blocks as big as their eyes) score
# lower in R- and O-Net, so they are accepted on SMALL_RNET/ONET_THRESHOLD with SMALL_FACE_VOTES
# boxes (more than DETECT_VOTES, against the non-faces the looser scores let through); such a face is
# dropped where it touches a strictly accepted face's box grown NEIGHBOUR_GROW times about its centre,
# where the looser scores mostly found hair and parts of that face, and where its box comes within
# EDGE_MARGIN photo px of the photo's edge, where they found cut-off hair and shoulders
# (docs/evaluation.md, "Detection on compressed photos").
SMALL_FACE_BOX = 20
SMALL_RNET_THRESHOLD, SMALL_ONET_THRESHOLD = 0.5, 0.5
SMALL_FACE_VOTES = 5
NEIGHBOUR_GROW = 1.5
EDGE_MARGIN = 1.5
# A face a video track found moments ago, missed by the search of a frame, is looked for again in a
# crop reaching NEAR_REACH box sides about the box the track expects, where a face is expected: there a
# box past NEAR_SCORE in both R- and O-Net with NEAR_VOTES agreeing boxes is enough, and the face taken
# is the likeliest one whose centre lies within half a box side of that box's (docs/evaluation.md,
# "A face just seen, looked for again").
NEAR_REACH = 1.5
NEAR_SCORE = 0.3
NEAR_VOTES = 3
# Without NMS, thousands of proposals can reach R-Net: they go through in batches so memory stays bounded.
CASCADE_BATCH = 1024


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


class VotedCascade(StageBase):
    """MTCNN's P-, R- and O-Net in one mtcnn stage: no NMS before O-Net; O-Net's faces need DETECT_VOTES boxes.

    Rows as mtcnn's: [image, x1, y1, x2, y2, confidence, x1..x5, y1..y5] (see the constants above for why).
    """

    def __init__(self):
        super().__init__(stage_name="voted cascade", stage_id=1)
        self.pnet, self.rnet, self.onet = StagePNet().model, StageRNet().model, StageONet().model

    def __call__(self, images_normalized, images_oshapes, min_face_size=DETECTOR_WINDOW,
                 small_box=SMALL_FACE_BOX, edge_margin=EDGE_MARGIN, near=False, **_):
        """`small_box`, `edge_margin`: SMALL_FACE_BOX, EDGE_MARGIN in the pixels of the image given
        (times its enlargement); `near`: the image is a crop about a face just seen, accepted by the
        NEAR_ rule instead (see the constants)."""
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
            lowest = NEAR_SCORE if near else min(RNET_THRESHOLD, SMALL_RNET_THRESHOLD)
            boxes = resize_to_square(pick_matches(boxes, score_threshold=lowest))
        if not len(boxes):
            return np.empty((0, 16))
        rnet_scores = boxes[:, 5].copy()
        offsets, landmarks, scores = self._run(self.onet, images_normalized, boxes, 48)
        landmarks = adjust_landmarks(landmarks, boxes)
        boxes = np.concatenate([adjust_bboxes(replace_confidence(boxes, scores), offsets), landmarks], axis=-1)
        if near:
            return vote(boxes[(rnet_scores > NEAR_SCORE) & (boxes[:, 5] > NEAR_SCORE)], NEAR_VOTES)
        return accept(boxes, rnet_scores, small_box, edge_margin, np.asarray(images_oshapes)[:, :2])

    @staticmethod
    def _run(net, images, boxes, side):
        parts = [net(extract_patches(images, boxes[i:i + CASCADE_BATCH], expected_size=(side, side)))
                 for i in range(0, len(boxes), CASCADE_BATCH)]
        return [tf.concat([p[k] for p in parts], axis=0) for k in range(len(parts[0]))]


def vote(rows, votes=DETECT_VOTES):
    """Greedy NMS of O-Net rows (best first), keeping a face only where >= `votes` rows overlap it."""
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
        agree = 1 + np.count_nonzero(inter[same] > VOTE_IOU * (area[best] + area[rest][same] - inter[same]))
        if agree >= votes:
            kept.append(best)
        order = rest[~same]
    return rows[kept].reshape(-1, rows.shape[1])


def accept(rows, rnet_scores, small_box, edge_margin, shapes):
    """The faces among O-Net rows (their R-Net scores alongside; `shapes`: (height, width) of each
    image): those `vote` keeps among rows past R/ONET_THRESHOLD, then those it keeps with
    SMALL_FACE_VOTES among rows under `small_box` px (longer side) past SMALL_RNET/ONET_THRESHOLD
    that touch none of the first grown NEIGHBOUR_GROW times and lie `edge_margin` px inside their image."""
    rnet_scores, onet_scores = np.asarray(rnet_scores), rows[:, 5]
    faces = vote(rows[(rnet_scores > RNET_THRESHOLD) & (onet_scores > ONET_THRESHOLD)])
    side = np.maximum(rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2])
    small = vote(rows[(side < small_box) & (rnet_scores > SMALL_RNET_THRESHOLD)
                      & (onet_scores > SMALL_ONET_THRESHOLD)], SMALL_FACE_VOTES)
    centre = (faces[:, 1:3] + faces[:, 3:5]) / 2
    reach = NEIGHBOUR_GROW * np.maximum(faces[:, 3] - faces[:, 1], faces[:, 4] - faces[:, 2]) / 2
    lo, hi = centre - reach[:, None], centre + reach[:, None]
    touches = ((small[:, None, 1:3] < hi[None]) & (small[:, None, 3:5] > lo[None])).all(-1) \
        & (small[:, None, 0] == faces[None, :, 0])
    size = np.asarray(shapes, np.float64).reshape(-1, 2)[small[:, 0].astype(int)][:, ::-1]   # (width, height)
    inside = (small[:, 1:3] >= edge_margin).all(1) & (small[:, 3:5] <= size - edge_margin).all(1)
    return np.concatenate([faces, small[~touches.any(1) & inside]])


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


def detect_faces(photo, detector=None, upscale=None, near=False):
    """Every face MTCNN finds in a uint8 RGB photo [H, W, 3], ordered left to right.

    MTCNN runs on the photo enlarged `upscale` times (bicubic; default
    `detection_upscale`) with its smallest window, so it finds face boxes down
    to DETECTOR_WINDOW / upscale photo px; boxes and landmarks are mapped back
    to the photo's pixel-centre coordinates. `near`: accept by the looser NEAR_
    rule (`detect_near`'s).
    """
    photo = check_photo(photo)
    detector = detector or default_detector()
    h, w = photo.shape[:2]
    upscale = detection_upscale(h, w) if upscale is None else int(upscale)
    image = photo if upscale == 1 else cv2.resize(photo, (w * upscale, h * upscale),
                                                  interpolation=cv2.INTER_CUBIC)
    rows = detector.detect_faces(image, output_type="numpy", box_format="xyxy",
                                 min_face_size=DETECTOR_WINDOW, small_box=SMALL_FACE_BOX * upscale,
                                 edge_margin=EDGE_MARGIN * upscale, near=near)
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


def detect_near(photo, box, detector=None):
    """The face about `box` (x1, y1, x2, y2; where a face just seen is expected) in a uint8 RGB photo, looked for
    again by the looser NEAR_ rule in a crop NEAR_REACH box sides about it: the likeliest `Face` whose
    box centre lies within half a box side of `box`'s, or None."""
    box = np.asarray(box, np.float64)
    side = max(box[2] - box[0], box[3] - box[1])
    centre = (box[:2] + box[2:]) / 2
    h, w = photo.shape[:2]
    x0, y0 = np.clip(np.floor(centre - NEAR_REACH * side), 0, None).astype(int)
    x1, y1 = np.minimum(np.ceil(centre + NEAR_REACH * side).astype(int) + 1, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:   # the box lies outside the photo
        return None
    best = None
    for face in detect_faces(np.ascontiguousarray(photo[y0:y1, x0:x1]), detector, DETECT_UPSCALE, near=True):
        face.box, face.landmarks = face.box + (x0, y0, x0, y0), face.landmarks + (x0, y0)
        if np.linalg.norm((face.box[:2] + face.box[2:]) / 2 - centre) < side / 2 \
                and (best is None or face.confidence > best.confidence):
            best = face
    return best
