"""video/tracks.py: faces detected on a video's searched frames become steady tracks (synthetic faces)."""
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from faces.detect import Face
from video.tracks import (
    FADE_SECONDS,
    LINK_IOU,
    LINK_REACH,
    LINK_SIZE_RATIO,
    LINK_SPEED,
    MAX_GAP_SECONDS,
    SMOOTH_SECONDS,
    Track,
    at_frame,
    box_iou,
    build_tracks,
    link,
)

# 5 landmarks (eyes, nose, mouth corners) about a face's box centre, in units of the box's side
LANDMARK_LAYOUT = np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.15, 0.2], [0.15, 0.2]])


def true_landmarks(centre, side):
    return np.asarray(centre, np.float64) + LANDMARK_LAYOUT * side


def make_face(centre, side=40.0, rng=None, noise=0.0, confidence=0.99):
    """A Face about `centre`, its landmarks and box corners jittered by Gaussian `noise` px."""
    landmarks = true_landmarks(centre, side)
    box = np.concatenate([np.asarray(centre) - side / 2, np.asarray(centre) + side / 2]).astype(np.float64)
    if noise:
        landmarks = landmarks + rng.normal(0, noise, landmarks.shape)
        box = box + rng.normal(0, noise, 4)
    return Face(box=box, landmarks=landmarks, confidence=confidence)


def closest_track(tracks, frame, centre):
    """The track whose landmarks' mean at `frame` is nearest `centre`."""
    def distance(track):
        i = frame - track.frames[0]
        if not 0 <= i < len(track.frames):
            return math.inf
        return float(np.linalg.norm(track.landmarks[i].mean(axis=0) - np.asarray(centre)))
    return min(tracks, key=distance)


def crossing_clip(n_frames, noise, seed=0):
    """Face A moving right along the top, B left along the bottom; detections every frame; truths [n, 5, 2]."""
    rng = np.random.default_rng(seed)
    centres_a = np.stack([60.0 + 1.5 * np.arange(n_frames), np.full(n_frames, 60.0)], axis=1)
    centres_b = np.stack([300.0 - 1.5 * np.arange(n_frames), np.full(n_frames, 200.0)], axis=1)
    detections = {f: [make_face(centres_a[f], rng=rng, noise=noise), make_face(centres_b[f], rng=rng, noise=noise)]
                  for f in range(n_frames)}
    truths = [np.array([true_landmarks(c, 40.0) for c in centres]) for centres in (centres_a, centres_b)]
    return detections, truths


def test_smoothed_tracks_are_closer_to_the_truth_and_steadier_than_the_detections():
    n_frames, fps = 100, 25.0
    detections, truths = crossing_clip(n_frames, noise=1.0)
    tracks = build_tracks(detections, n_frames, fps)
    assert len(tracks) == 2
    for k, truth in enumerate(truths):
        track = closest_track(tracks, 0, truth[0].mean(axis=0))
        np.testing.assert_array_equal(track.frames, np.arange(n_frames))
        assert track.detected.all()
        raw = np.array([detections[f][k].landmarks for f in range(n_frames)])
        rms_raw = np.sqrt(np.mean((raw - truth) ** 2))
        rms_smooth = np.sqrt(np.mean((track.landmarks - truth) ** 2))
        assert rms_raw / rms_smooth > 2
        jitter_raw = np.abs(np.diff(raw, n=2, axis=0)).mean()
        jitter_smooth = np.abs(np.diff(track.landmarks, n=2, axis=0)).mean()
        assert jitter_raw / jitter_smooth > 10
        # away from the ends the smoothing is the Gaussian filter itself (independent computation)
        sigma = SMOOTH_SECONDS * fps
        reach = int(4 * sigma + 0.5)   # gaussian_filter1d's reach (truncate=4)
        expected = gaussian_filter1d(raw, sigma, axis=0, mode="nearest")
        np.testing.assert_allclose(track.landmarks[reach:-reach], expected[reach:-reach], atol=1e-9)


def test_steady_motion_is_kept_exactly_without_lag_up_to_the_ends():
    n_frames, fps = 60, 25.0
    detections, truths = crossing_clip(n_frames, noise=0.0)
    tracks = build_tracks(detections, n_frames, fps)
    for truth in truths:
        track = closest_track(tracks, 0, truth[0].mean(axis=0))
        error = np.abs(track.landmarks.mean(axis=1) - truth.mean(axis=1))
        assert error.max() < 0.1
        # a filter padding with the end value (mode="nearest") would lag the moving face here
        nearest = gaussian_filter1d(truth, SMOOTH_SECONDS * fps, axis=0, mode="nearest")
        assert np.abs(nearest.mean(axis=1) - truth.mean(axis=1))[[0, -1]].max() > 0.5


def test_every_third_frame_searched_is_interpolated_linearly_between_detections():
    n_frames, fps, every = 32, 25.0, 3
    searched = list(range(0, n_frames, every)) + [n_frames - 1]   # the last frame is always searched
    rng = np.random.default_rng(1)
    missed_b = 15
    detections = {}
    for f in searched:
        faces = [make_face((50.0 + 2 * f, 60.0), rng=rng, noise=1.0, confidence=rng.uniform(0.8, 1))]
        if f >= 6 and f != missed_b:   # face B is first found at frame 6, missed at frame 15
            faces.append(make_face((250.0, 80.0 + f), rng=rng, noise=1.0, confidence=rng.uniform(0.8, 1)))
        detections[f] = faces
    tracks = build_tracks(detections, n_frames, fps, smooth=0)
    assert len(tracks) == 2
    track_a = closest_track(tracks, 0, (50.0, 60.0))
    track_b = closest_track(tracks, 6, (250.0, 86.0))
    for track, k, found in [(track_a, 0, searched), (track_b, 1, [f for f in searched if f >= 6 and f != missed_b])]:
        # a track starts at its first detection and ends at its last: no frames guessed beyond them
        np.testing.assert_array_equal(track.frames, np.arange(found[0], found[-1] + 1))
        np.testing.assert_array_equal(track.detected, np.isin(track.frames, found))
        raw = np.array([detections[f][k].landmarks for f in found])
        boxes = np.array([detections[f][k].box for f in found])
        for p in range(5):
            for c in range(2):
                np.testing.assert_array_equal(track.landmarks[:, p, c], np.interp(track.frames, found, raw[:, p, c]))
        for c in range(4):
            np.testing.assert_array_equal(track.boxes[:, c], np.interp(track.frames, found, boxes[:, c]))
        assert track.confidence == pytest.approx(np.mean([detections[f][k].confidence for f in found]))
    assert not track_b.detected[missed_b - 6]


@pytest.mark.parametrize("extra_missed, n_tracks", [(0, 1), (1, 2)])
def test_a_gap_up_to_max_gap_is_bridged_and_a_longer_one_splits_the_track(extra_missed, n_tracks):
    n_frames, fps = 100, 24.0
    missed = int(MAX_GAP_SECONDS * fps) + extra_missed
    first_missed = 30
    rng = np.random.default_rng(2)
    detections = {f: ([] if first_missed <= f < first_missed + missed
                      else [make_face((100.0 + 0.5 * f, 80.0), rng=rng, noise=0.5)])
                  for f in range(n_frames)}
    tracks = build_tracks(detections, n_frames, fps, smooth=0)
    assert len(tracks) == n_tracks
    if n_tracks == 1:
        track = tracks[0]
        np.testing.assert_array_equal(track.frames, np.arange(n_frames))
        gap = np.arange(first_missed, first_missed + missed)
        assert not track.detected[gap].any() and track.detected.sum() == n_frames - missed
        before, after = detections[first_missed - 1][0].landmarks, detections[first_missed + missed][0].landmarks
        share = (gap - (first_missed - 1)) / (missed + 1)
        np.testing.assert_allclose(track.landmarks[gap], before + share[:, None, None] * (after - before), atol=1e-9)
    else:
        np.testing.assert_array_equal(tracks[0].frames, np.arange(first_missed))
        np.testing.assert_array_equal(tracks[1].frames, np.arange(first_missed + missed, n_frames))


def test_a_face_seen_once_is_dropped_unless_one_detection_suffices():
    n_frames, fps = 50, 25.0
    rng = np.random.default_rng(3)
    detections = {f: [make_face((100.0, 100.0), rng=rng, noise=0.5)] for f in range(n_frames)}
    false_face = make_face((300.0, 60.0), rng=rng, noise=0.5, confidence=0.81)
    detections[20].append(false_face)
    assert len(build_tracks(detections, n_frames, fps)) == 1
    tracks = build_tracks(detections, n_frames, fps, min_detections=1)
    assert len(tracks) == 2
    once = closest_track(tracks, 20, (300.0, 60.0))
    np.testing.assert_array_equal(once.frames, [20])
    np.testing.assert_array_equal(once.landmarks[0], false_face.landmarks)   # one frame: nothing to smooth
    assert once.confidence == pytest.approx(0.81)


def test_a_clip_searched_fewer_times_than_min_detections_keeps_its_faces():
    face = make_face((100.0, 100.0))
    assert len(build_tracks({0: [face], 1: []}, 2, 25.0, min_detections=3)) == 1
    assert build_tracks({0: [face], 1: [], 2: []}, 3, 25.0, min_detections=3) == []


def test_a_face_entering_fades_in_over_the_fade_time_and_one_present_throughout_does_not_fade():
    n_frames, fps, enters = 100, 25.0, 20
    detections = {f: [make_face((100.0, 100.0))] + ([make_face((300.0, 100.0))] if f >= enters else [])
                  for f in range(n_frames)}
    tracks = build_tracks(detections, n_frames, fps)
    present = closest_track(tracks, 0, (100.0, 100.0))
    entering = closest_track(tracks, enters, (300.0, 100.0))
    np.testing.assert_array_equal(present.weight, np.ones(n_frames, np.float32))
    assert entering.weight.dtype == np.float32
    fade_frames = FADE_SECONDS * fps
    ramp = np.arange(len(entering.frames)) < fade_frames
    assert entering.weight[0] < 0.1
    assert (np.diff(entering.weight[ramp]) > 0).all() and (entering.weight[ramp] < 1).all()
    assert (entering.weight[~ramp] == 1).all()   # to the clip's last frame: no fade out there


def test_a_fade_is_a_smoothstep_and_a_face_leaving_fades_out_as_one_entering_fades_in():
    n_frames, fps, fade_frames = 100, 25.0, 8
    detections = {f: ([make_face((100.0, 100.0))] if f <= 60 else []) + ([make_face((300.0, 100.0))] if f >= 40 else [])
                  for f in range(n_frames)}
    tracks = build_tracks(detections, n_frames, fps, fade=fade_frames / fps)
    leaving = closest_track(tracks, 0, (100.0, 100.0))
    entering = closest_track(tracks, 99, (300.0, 100.0))
    rise = entering.weight[:fade_frames]
    np.testing.assert_allclose(rise + rise[::-1], 1.0, atol=1e-6)   # an S about its middle
    steps = np.diff(rise)
    assert max(steps[0], steps[-1]) < 0.75 * steps[len(steps) // 2]   # eases in and out, unlike a straight ramp
    np.testing.assert_array_equal(leaving.weight[-fade_frames:], rise[::-1])
    assert (leaving.weight[:-fade_frames] == 1).all()


def test_at_frame_returns_the_covering_tracks_with_their_landmarks_and_weights():
    n_frames, fps = 100, 25.0
    spans = {(100.0, 100.0): (0, 99), (300.0, 100.0): (20, 60), (500.0, 100.0): (70, 99)}
    detections = {f: [make_face(c) for c, (a, b) in spans.items() if a <= f <= b] for f in range(n_frames)}
    tracks = build_tracks(detections, n_frames, fps)
    by_centre = {c: closest_track(tracks, a, c) for c, (a, _) in spans.items()}
    for index in [0, 20, 45, 60, 65, 70, 99]:
        expected = [(track, track.landmarks[index - track.frames[0]], track.weight[index - track.frames[0]])
                    for c, track in by_centre.items() if spans[c][0] <= index <= spans[c][1]]
        got = at_frame(tracks, index)
        assert [item[0] for item in got] == [item[0] for item in expected]
        for (_, landmarks, weight), (_, want_landmarks, want_weight) in zip(got, expected):
            np.testing.assert_array_equal(landmarks, want_landmarks)
            assert weight == pytest.approx(float(want_weight)) and weight > 0
    zero = Track(frames=np.arange(3), landmarks=np.zeros((3, 5, 2)), detected=np.ones(3, bool),
                 weight=np.array([0.0, 0.5, 1.0], np.float32), boxes=np.zeros((3, 4)), confidence=0.9)
    assert at_frame([zero], 0) == []
    assert [w for _, _, w in at_frame([zero], 1)] == [0.5]


def test_two_overlapping_faces_moving_side_by_side_keep_their_identities():
    # 40 px faces 24 px apart moving 6 px between searches: at the second search, before any velocity is
    # known, each new box overlaps both tracks' boxes by more than LINK_IOU, so only the assignment of
    # larger overlaps keeps them apart
    n_frames, fps, every = 31, 25.0, 3
    rng = np.random.default_rng(4)
    centres = {name: (lambda f, x0=x0: (x0 + 2.0 * f, 100.0)) for name, x0 in [("left", 100.0), ("right", 124.0)]}
    detections = {f: [make_face(centres["right"](f), rng=rng, noise=0.5), make_face(centres["left"](f), rng=rng,
                                                                                   noise=0.5)]
                  for f in range(0, n_frames, every)}
    tracks = build_tracks(detections, n_frames, fps)
    assert len(tracks) == 2
    for centre in centres.values():
        track = closest_track(tracks, 0, centre(0))
        assert track.detected.sum() == len(detections)
        path = np.array([true_landmarks(centre(f), 40.0).mean(axis=0) for f in track.frames])
        assert np.abs(track.landmarks.mean(axis=1) - path).max() < 2.0


def test_two_faces_moving_fast_in_parallel_keep_their_identities_across_missed_searches():
    # 40 px faces 44 px apart at 5 px per frame, both missed for 5 frames: on their return each has moved
    # 30 px, nearer its neighbour's last box than its own, so only moving the boxes with their velocity
    # links each to its own track
    n_frames, fps = 50, 25.0
    rng = np.random.default_rng(5)
    missed = range(20, 25)
    centres = [lambda f: (100.0 + 5.0 * f, 100.0), lambda f: (144.0 + 5.0 * f, 100.0)]
    detections = {f: [] if f in missed else [make_face(c(f), rng=rng, noise=1.0) for c in centres]
                  for f in range(n_frames)}
    tracks = build_tracks(detections, n_frames, fps)
    assert len(tracks) == 2
    for centre in centres:
        track = closest_track(tracks, 0, centre(0))
        np.testing.assert_array_equal(track.frames, np.arange(n_frames))
        path = np.array([true_landmarks(centre(f), 40.0).mean(axis=0) for f in track.frames])
        assert np.abs(track.landmarks.mean(axis=1) - path).max() < 2.0


def test_box_iou_matches_counted_pixels():
    rng = np.random.default_rng(6)
    corners = rng.integers(0, 30, (6, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 1], axis=1).astype(np.float64)
    y, x = np.mgrid[0:32, 0:32]
    masks = [(x >= b[0]) & (x < b[2]) & (y >= b[1]) & (y < b[3]) for b in boxes]
    counted = np.array([[(m & n).sum() / (m | n).sum() for n in masks[3:]] for m in masks[:3]])
    np.testing.assert_allclose(box_iou(boxes[:3], boxes[3:]), counted, atol=1e-12)


@pytest.mark.parametrize("overlap, n_tracks", [(LINK_IOU + 0.05, 1), (LINK_IOU - 0.05, 1)])
def test_a_face_joins_a_track_where_its_box_overlaps_or_lies_within_reach(overlap, n_tracks):
    # a still face lost for a few frames, then a face beside it, its box shifted to overlap by `overlap`:
    # under LINK_IOU it still joins, being well within the reach of 5 frames
    side = 40.0
    shift = side * (1 - overlap) / (1 + overlap)
    detections = {f: [] if 10 <= f < 14 else [make_face((100.0 + shift * (f >= 14), 100.0), side)]
                  for f in range(30)}
    chains = link(detections, 25.0)
    assert box_iou(detections[9][0].box, detections[14][0].box)[0, 0] == pytest.approx(overlap)
    assert [len(chain) for chain in chains] == ([26] if n_tracks == 1 else [10, 16])


@pytest.mark.parametrize("fps, sides, scale, n_tracks", [
    (10.0, 0.9 * LINK_SPEED * 4 / 10, 1.0, 1),    # a small face moving fast, no overlap: within reach
    (10.0, 1.1 * LINK_SPEED * 4 / 10, 1.0, 2),    # beyond LINK_SPEED box sides a second
    (100.0, 0.9 * LINK_REACH, 1.0, 1),            # the reach's floor, where little time went by
    (100.0, 1.1 * LINK_REACH, 1.0, 2),
    (25.0, 1.2, 0.95 * LINK_SIZE_RATIO, 1),       # near, and of a size the face could have grown to
    (25.0, 1.2, 1.05 * LINK_SIZE_RATIO, 2),       # near, but too large to be the same face
])
def test_a_face_beyond_the_overlap_joins_within_link_speed_of_a_like_size(fps, sides, scale, n_tracks):
    # two searches 4 frames apart: the face jumps `sides` box sides to the right and is `scale` times larger
    assert LINK_SPEED * 4 / 10 > LINK_REACH > LINK_SPEED * 4 / 100   # the rows at 10 fps go past the floor
    side = 12.0
    detections = {0: [make_face((100.0, 100.0), side)], 4: [make_face((100.0 + sides * side, 100.0), side * scale)]}
    assert len(link(detections, fps)) == n_tracks


def test_a_tiny_face_moving_over_a_box_side_between_searches_stays_one_track():
    # a face of a 10 px box moving 6 px a frame (15 box sides a second), searched every 2 frames at 25 fps:
    # its boxes never overlap and a reach of LINK_SPEED x 2 frames (0.64 sides) would split it at every search
    side, n_frames, fps = 10.0, 50, 25.0
    detections = {f: [make_face((100.0, 50.0 + 6.0 * f), side)] for f in range(0, n_frames, 2)}
    assert box_iou(detections[0][0].box, detections[2][0].box)[0, 0] == 0
    tracks = build_tracks(detections, n_frames, fps)
    assert len(tracks) == 1 and tracks[0].detected.sum() == len(detections)


def test_an_overlapping_face_outranks_a_nearer_looking_one():
    # the track's face overlaps the first candidate by more than LINK_IOU; the second lies within reach only
    side = 20.0
    detections = {0: [make_face((100.0, 100.0), side)],
                  2: [make_face((104.0, 100.0), side), make_face((100.0, 100.0 + 1.2 * side), side)]}
    chains = link(detections, 25.0)
    assert [len(c) for c in chains] == [2, 1]
    assert chains[0][1][1].box[0] == detections[2][0].box[0]


def test_detections_outside_the_clip_and_a_rate_of_zero_are_refused():
    with pytest.raises(ValueError, match="outside the clip"):
        build_tracks({0: [make_face((50.0, 50.0))], 10: []}, 10, 25.0)
    with pytest.raises(ValueError, match="fps"):
        link({0: [make_face((50.0, 50.0))]}, 0)
