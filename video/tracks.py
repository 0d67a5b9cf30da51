"""Steady face tracks across a video's frames, from faces detected on some of its frames.

Pass 1 of the video path detects faces on the searched frames (every `detect_every` frames and the
last); this module links those detections into one track per face (`link`), fills the frames between
and smooths the landmarks over time (`build_tracks`), so pass 2 pastes each face with landmarks that
do not jitter, through a missed detection, fading in and out where a face enters or leaves
(`at_frame`). Detected each frame on its own, the pasted faces wobble with the landmarks' pixel noise,
flash off where one detection is missed and pop in and out.

Where a track starts and ends: at its first and last detection, not beyond. A face not found at a
searched frame may be turned away, covered or gone; a face pasted there would be a super-resolved face
over what is no longer one, while a frame outside every track simply stays as the rest of the frame is.

Faces are `faces.detect.Face`-like (`box` [4] x1, y1, x2, y2; `landmarks` [5, 2]; `confidence`); this
module does not import faces.detect, so it needs no TensorFlow.
"""
import dataclasses

import numpy as np
from scipy.ndimage import correlate1d
from scipy.optimize import linear_sum_assignment

# A searched frame's face joins a track when its box overlaps the track's predicted box by this IoU:
# low enough that a box's pixel jitter, a change of size and an imperfect motion prediction keep a face
# on its track; high enough that a neighbour's box, which at most touches or partly hides it, rarely
# reaches it (and where two faces both qualify the assignment takes the better overlaps).
LINK_IOU = 0.3
# A track's box is predicted at the next searched frame by moving its last box with the velocity fitted
# (least squares) to its last VELOCITY_DETECTIONS detections: faces move between searches and more so
# across a missed detection, and a fit over several detections keeps the boxes' pixel noise, divided
# by the frames between them, out of the velocity while still following a change of direction soon.
VELOCITY_DETECTIONS = 5
# A face whose box misses its track's predicted one (a track's first link has no velocity yet, and a
# small face moves its own width in a few frames) still joins it when the centres lie within
# LINK_SPEED box sides per second since the track's last detection and the sides differ by under
# LINK_SIZE_RATIO: faster than a person walks across a wide shot; such links rank below every IoU
# link. Between searches a few frames apart the reach is at least LINK_REACH box sides: a face of a
# 10 px box crossing a frame moves over a box side between two searches, and a reach of LINK_SPEED
# times those few frames split its track at every search (docs/evaluation.md, "Video").
LINK_SPEED = 8.0
LINK_REACH = 1.5
LINK_SIZE_RATIO = 1.5
# A track whose face has gone unfound at the searches over more than this ends: a blink, a blur or a
# hand passing is bridged (interpolated through), a face that left and came back starts a new track.
MAX_GAP_SECONDS = 0.5
# Landmark noise changes from frame to frame while a face moves over several: a Gaussian of this many
# seconds (about 2.5 frames at 25 fps) takes out the jitter without blurring a turn of the head.
SMOOTH_SECONDS = 0.1
# The Gaussian's weights reach this many sigma each side (as scipy's gaussian_filter1d's): beyond it they
# are under exp(-8) of the centre's.
GAUSSIAN_REACH = 4.0
# A track starting or ending inside the clip blends in or out over this long, so its face does not pop.
FADE_SECONDS = 0.3
# A track needs this many detections: a false face seen once or twice would flash for a fraction of a
# second, while a real face is seen at searches in a row.
MIN_DETECTIONS = 3


@dataclasses.dataclass
class Track:
    """One face over consecutive frames, from its first detection to its last.

    frames: int [T], every frame index from the first to the last; landmarks: float64 [T, 5, 2], smoothed;
    detected: bool [T], a detection was linked at that frame (else interpolated); weight: float32 [T] in
    [0, 1], the paste weight, fading in/out where the track starts/ends inside the clip; boxes: float64
    [T, 4], interpolated (not smoothed: reports show what the detector found); confidence: the mean
    detector confidence of its detections.
    """
    frames: np.ndarray
    landmarks: np.ndarray
    detected: np.ndarray
    weight: np.ndarray
    boxes: np.ndarray
    confidence: float


def box_iou(boxes_a, boxes_b):
    """float64 [len(a), len(b)]: intersection over union of boxes (x1, y1, x2, y2)."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def predicted_box(chain, frame):
    """float64 [4]: the box of `chain` ([(frame, Face)]) at `frame`, its last box moved at its fitted velocity.

    Box IoU after motion rather than centre distance: one measure that also follows a change of size,
    and moving the box keeps a face moving fast, or across a missed search, on its track.
    """
    recent = chain[-VELOCITY_DETECTIONS:]
    last_frame, last_face = recent[-1]
    last_box = np.asarray(last_face.box, np.float64)
    if len(recent) < 2:
        return last_box
    frames = np.array([f for f, _ in recent], np.float64)
    boxes = np.array([face.box for _, face in recent], np.float64)
    velocity = np.polyfit(frames, boxes, 1)[0]
    return last_box + velocity * (frame - last_frame)


def link_scores(live, faces, frame, fps):
    """float64 [len(live), len(faces)]: how well each face continues each track at `frame`: the IoU with its
    predicted box where it reaches LINK_IOU, else under LINK_IOU by the centres' distance within the reach
    (see LINK_SPEED), else 0 (refused)."""
    predicted = np.array([predicted_box(chain, frame) for chain in live])
    boxes = np.array([face.box for face in faces], np.float64)
    iou = box_iou(predicted, boxes)
    side_p = (predicted[:, 2:] - predicted[:, :2]).mean(1)[:, None]
    side_f = (boxes[:, 2:] - boxes[:, :2]).mean(1)[None, :]
    centres_p = (predicted[:, :2] + predicted[:, 2:]) / 2
    centres_f = (boxes[:, :2] + boxes[:, 2:]) / 2
    distance = np.linalg.norm(centres_p[:, None] - centres_f[None], axis=-1) / side_p
    elapsed = np.array([(frame - chain[-1][0]) / fps for chain in live])[:, None]
    reach = np.maximum(LINK_REACH, LINK_SPEED * elapsed)
    similar = np.maximum(side_p / side_f, side_f / side_p) < LINK_SIZE_RATIO
    near = np.where(similar & (distance < reach), LINK_IOU * (1 - distance / reach) / 2, 0.0)
    return np.where(iou >= LINK_IOU, iou, near)


def extend(live, faces, frame, fps):
    """Continue the open tracks `live` ([[(frame, Face), ...], ...], changed in place) with the `faces`
    found at `frame`: the assignment of largest total `link_scores` (Hungarian: IoU with the predicted
    box, else nearness), refused pairs left out. Returns (faces left over, tracks not continued)."""
    matched, continued = set(), set()
    if live and faces:
        score = link_scores(live, faces, frame, fps)   # refused pairs score 0: they displace no allowed one
        for row, col in zip(*linear_sum_assignment(score, maximize=True)):
            if score[row, col] > 0:
                live[row].append((frame, faces[col]))
                matched.add(col)
                continued.add(row)
    return ([face for col, face in enumerate(faces) if col not in matched],
            [chain for row, chain in enumerate(live) if row not in continued])


def link(detections, fps, max_gap=MAX_GAP_SECONDS):
    """Each face's detections, linked across the searched frames: [[(frame, Face), ...] in frame order, ...].

    detections: {frame index: [Face, ...]}, one entry per searched frame (empty where none was found).
    At each searched frame the open tracks are continued by its faces (`extend`); a face left over
    starts a track. A track ends once the searches that missed it span more than `max_gap` seconds
    after its last detection. Tracks come in the order they started.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    max_gap_frames = max_gap * fps
    live, ended = [], []
    previous = None
    for frame in sorted(detections):
        if previous is not None:
            ended += [chain for chain in live if previous - chain[-1][0] > max_gap_frames]
            live = [chain for chain in live if previous - chain[-1][0] <= max_gap_frames]
        left, _ = extend(live, list(detections[frame]), frame, fps)
        live += [[(frame, face)] for face in left]
        previous = frame
    return sorted(ended + live, key=lambda chain: chain[0][0])


def smooth_over_time(values, sigma):
    """values [T, ...] smoothed along axis 0 by a Gaussian of `sigma` samples, fitting a line at the ends.

    At each sample: the value there of the line fitted by least squares to the track's samples, each
    weighted by the Gaussian about it. Inside the track that is the Gaussian filter itself (symmetric
    weights); within a few sigma of the ends, where a filter has to pad (mode="nearest" holds the end
    value and so bends a moving face's path back, lagging it), the line keeps a steady motion exact.
    sigma 0: the values unchanged.
    """
    values = np.asarray(values, np.float64)
    if sigma <= 0:
        return values.copy()
    radius = int(GAUSSIAN_REACH * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    flat = values.reshape(len(values), -1)

    def weighted_sum(x, kernel):
        # at each sample t: sum over s of kernel[s - t] x[s], over the track's samples only
        return correlate1d(x, kernel, axis=0, mode="constant", cval=0.0)

    ones = np.ones(len(values))
    s0 = weighted_sum(ones, weights)[:, None]
    s1 = weighted_sum(ones, weights * offsets)[:, None]
    s2 = weighted_sum(ones, weights * offsets**2)[:, None]
    y0 = weighted_sum(flat, weights)
    y1 = weighted_sum(flat, weights * offsets)
    det = s0 * s2 - s1 * s1
    # one sample within reach (a one-frame track, a sigma under 1 / (2 GAUSSIAN_REACH)): no slope, the mean
    slope = np.divide(s0 * y1 - s1 * y0, det, out=np.zeros_like(y0), where=det > 0)
    return ((y0 - s1 * slope) / s0).reshape(values.shape)


def fade_weights(frames, n_frames, fade_frames):
    """float32 [T]: 1, smoothstepping up from ~0 over `fade_frames` after a start inside the clip (> 0) and
    down before an end inside it (< n_frames - 1); a side at the clip's edge does not fade."""
    frames = np.asarray(frames)
    weight = np.ones(len(frames), np.float64)
    if frames[0] > 0:
        weight = np.minimum(weight, (frames - frames[0] + 1) / (fade_frames + 1))
    if frames[-1] < n_frames - 1:
        weight = np.minimum(weight, (frames[-1] - frames + 1) / (fade_frames + 1))
    weight = np.clip(weight, 0, 1)
    return (weight * weight * (3 - 2 * weight)).astype(np.float32)


def build_tracks(detections, n_frames, fps, smooth=SMOOTH_SECONDS, max_gap=MAX_GAP_SECONDS,
                 fade=FADE_SECONDS, min_detections=MIN_DETECTIONS):
    """[Track, ...] of a clip of `n_frames` frames at `fps` from its searched frames' `detections`.

    `link`s the detections; drops tracks of fewer than `min_detections` detections unless the clip
    searched fewer frames than that; fills every frame from a track's first detection to its last by
    linear interpolation of landmarks and boxes; smooths the landmarks over `smooth` seconds
    (`smooth_over_time`; 0: not at all); fades over `fade` seconds (`fade_weights`). Times in seconds.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    outside = [frame for frame in detections if not 0 <= frame < n_frames]
    if outside:
        raise ValueError(f"searched frames {sorted(outside)} are outside the clip's 0..{n_frames - 1}")
    needed = min_detections if len(detections) >= min_detections else 1
    tracks = []
    for chain in link(detections, fps, max_gap):
        if len(chain) < needed:
            continue
        found = np.array([frame for frame, _ in chain])
        frames = np.arange(found[0], found[-1] + 1)
        landmarks = np.array([face.landmarks for _, face in chain], np.float64).reshape(len(chain), -1)
        boxes = np.array([face.box for _, face in chain], np.float64)
        landmarks = np.stack([np.interp(frames, found, column) for column in landmarks.T], axis=1)
        boxes = np.stack([np.interp(frames, found, column) for column in boxes.T], axis=1)
        tracks.append(Track(
            frames=frames,
            landmarks=smooth_over_time(landmarks, smooth * fps).reshape(len(frames), 5, 2),
            detected=np.isin(frames, found),
            weight=fade_weights(frames, n_frames, fade * fps),
            boxes=boxes,
            confidence=float(np.mean([face.confidence for _, face in chain])),
        ))
    return tracks


def at_frame(tracks, index):
    """[(track, landmarks [5, 2], weight), ...] of the tracks covering frame `index` with weight > 0."""
    covering = []
    for track in tracks:
        i = index - track.frames[0]
        if 0 <= i < len(track.frames) and track.weight[i] > 0:
            covering.append((track, track.landmarks[i], float(track.weight[i])))
    return covering
