"""The video path (video/clip.py, test.py --real_world on a video) on clips made here from the bundled
sample faces (video/scene.py), with the bundled real-photo generator.

What is asserted is measured here, independently of video/bench.py: the output is decoded with PyAV
directly, bicubic is OpenCV's, each face's region is a disc about its true frame centre.
"""
import json
import os
import subprocess
import sys
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.constants import CELEBA_CROP, FRAME, REAL_BUNDLE
from data.images import list_images, read_image
from faces import align, photo as ph, sizes
from faces.align import TEMPLATE_128

SAMPLES = os.path.join(ROOT, "datasets", "test")
UPSCALE = 8
LR_SIZE = (160, 90)
FPS = 10
SECONDS = 3


@pytest.fixture(scope="module")
def scene():
    from video.scene import Scene

    faces = [read_image(p) for p in list_images(SAMPLES)[:2]]
    return Scene(faces, LR_SIZE, SECONDS, FPS, seed=3, factor=UPSCALE)


@pytest.fixture(scope="module")
def model():
    from deploy.inference import load_inference

    return load_inference(os.path.join(ROOT, REAL_BUNDLE))


@pytest.fixture(scope="module")
def clip(scene, tmp_path_factory):
    from video.scene import write_clip

    return write_clip(str(tmp_path_factory.mktemp("clip") / "clip.mp4"), scene, tone_hz=440)


@pytest.fixture(scope="module")
def result(clip, model, tmp_path_factory):
    from video.clip import super_resolve_video

    out = str(tmp_path_factory.mktemp("out") / "clip_SR.mp4")
    return super_resolve_video(clip, out, model.predict, upscale=UPSCALE, progress=False)


def decode(path):
    """Every video frame of `path` as uint8 RGB, with PyAV alone."""
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def disc(truth, shape):
    """bool [H, W]: a disc of 0.3 frame sides about the true face's frame centre, in output px."""
    inv = cv2.invertAffineTransform(truth)
    centre = inv[:, :2] @ np.full(2, (FRAME - 1) / 2) + inv[:, 2]
    side = FRAME / np.sqrt(abs(np.linalg.det(truth[:, :2])))
    cx, cy = (centre + 0.5) * UPSCALE - 0.5
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return (x - cx) ** 2 + (y - cy) ** 2 < (0.3 * side * UPSCALE) ** 2


def psnr(a, b, region):
    mse = np.mean((a[region].astype(np.float64) - b[region].astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_scene_truth_maps_frame_the_face_it_placed(scene):
    index = 7
    hr, truths = scene.frame(index)
    for face, truth in zip(scene.faces, truths):
        # the 128 frame drawn from the full-resolution frame through the truth (shrunk px -> frame)
        half = (UPSCALE - 1) / (2 * UPSCALE)
        to_lr = np.array([[1 / UPSCALE, 0, -half], [0, 1 / UPSCALE, -half]])
        m = np.vstack([truth, [0, 0, 1]]) @ np.vstack([to_lr, [0, 0, 1]])
        drawn = cv2.warpAffine(hr, m[:2], (FRAME, FRAME), flags=cv2.INTER_AREA)
        top = (face.shape[0] - CELEBA_CROP) // 2
        expected = cv2.resize(face[top:top + CELEBA_CROP], (FRAME, FRAME), interpolation=cv2.INTER_AREA)
        assert np.abs(drawn.astype(float) - expected).mean() < 4


def test_output_keeps_frames_rate_size_and_sound(clip, result, scene):
    with av.open(result.path) as out, av.open(clip) as src:
        video, audio = out.streams.video[0], out.streams.audio[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert Fraction(video.average_rate) == scene.fps == result.fps
        assert (video.codec_context.width, video.codec_context.height) == result.size == (
            LR_SIZE[0] * UPSCALE, LR_SIZE[1] * UPSCALE)
        src_audio = src.streams.audio[0]
        assert audio.codec_context.name == src_audio.codec_context.name == "aac"
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in out.decode(audio=0)])
    assert len(decode(result.path)) == result.frames == scene.count
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * src_audio.codec_context.sample_rate / len(samples) - 440) < 2
    assert abs(len(samples) / src_audio.codec_context.sample_rate - SECONDS) < 0.1
    assert not [n for n in os.listdir(os.path.dirname(result.path)) if n != os.path.basename(result.path)]


def tracked(result, index, truth):
    """Whether a super-resolved track pastes the true face at frame `index`: weight >= 0.5, the mean of its
    eyes and mouth corners within a quarter frame of where the truth puts the template's."""
    inv = cv2.invertAffineTransform(truth)
    centre = inv[:, :2] @ TEMPLATE_128[[0, 1, 3, 4]].mean(0) + inv[:, 2]
    side = FRAME / np.sqrt(abs(np.linalg.det(truth[:, :2])))
    for track, face in zip(result.tracks, result.faces):
        at = np.nonzero(track.frames == index)[0]
        if face["status"] == ph.SUPER_RESOLVED and len(at) and track.weight[at[0]] >= 0.5:
            eyes_mouth = track.landmarks[at[0]][[0, 1, 3, 4]]
            if np.linalg.norm(eyes_mouth.mean(0) - centre) < side / 4:
                return True
    return False


def test_faces_are_super_resolved_in_most_frames_better_than_bicubic_and_steady(clip, result, scene):
    outputs, inputs = decode(result.path), decode(clip)
    gains, found, change = [], [], {"sr": [], "bicubic": []}
    previous = None
    for index, (out, small) in enumerate(zip(outputs, inputs)):
        hr, truths = scene.frame(index)
        bicubic = cv2.resize(small, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
        regions = [disc(t, out.shape) for t in truths]
        gains.append([psnr(out, hr, r) - psnr(bicubic, hr, r) for r in regions])
        found += [tracked(result, index, t) for t in truths]
        union = np.any(regions, axis=0)
        if previous is not None:
            change["sr"].append(np.abs(out[union].astype(float) - previous[0][union]).mean())
            change["bicubic"].append(np.abs(bicubic[union].astype(float) - previous[1][union]).mean())
        previous = (out, bicubic)
    assert np.mean(found) >= 0.9
    assert np.mean(gains) >= 0.3, np.mean(gains, axis=0)
    assert np.mean(change["sr"]) <= 1.10 * np.mean(change["bicubic"])
    assert result.count(ph.SUPER_RESOLVED) == len(result.faces) == len(scene.faces)
    assert result.frames_with_face == scene.count


def flicker(path, scene):
    """Mean |frame t - frame t-1 moved by the faces' true motion| of a decoded output within the true faces'
    discs: the change that is not the faces' motion."""
    frames = decode(path)
    half = (UPSCALE - 1) / (2 * UPSCALE)
    to_shrunk = np.array([[1 / UPSCALE, 0, -half], [0, 1 / UPSCALE, -half], [0, 0, 1]])
    changes = []
    for index in range(1, len(frames)):
        for now, before in zip(scene.truths(index), scene.truths(index - 1)):
            # output px at t-1 -> the face's 128 frame -> output px at t
            motion = np.linalg.inv(np.vstack([now, [0, 0, 1]]) @ to_shrunk) @ np.vstack([before, [0, 0, 1]]) @ to_shrunk
            moved = cv2.warpAffine(frames[index - 1], motion[:2], frames[index].shape[1::-1], flags=cv2.INTER_LINEAR)
            region = disc(now, frames[index].shape)
            changes.append(np.abs(frames[index][region].astype(float) - moved[region]).mean())
    return np.mean(changes)


def test_smoothing_and_blending_steady_the_faces(clip, model, result, scene, monkeypatch, tmp_path):
    """With each frame's own landmarks and generator output (no smoothing, no blend) the faces flicker more."""
    from video import clip as vc, tracks

    unsmoothed = tracks.build_tracks
    monkeypatch.setattr(tracks, "build_tracks", lambda found, n, fps: unsmoothed(found, n, fps, smooth=0))
    shaky = vc.super_resolve_video(clip, str(tmp_path / "shaky.mp4"), model.predict, blend=0, progress=False)
    assert flicker(result.path, scene) < 0.8 * flicker(shaky.path, scene)


def test_the_previous_face_carries_where_the_faces_agree_and_falls_off_where_they_differ():
    from video import clip as vc

    face = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    inside = np.ones((64, 64), bool)
    inside[:, :8] = False
    for change in (0.0, vc.BLEND_TOLERANCE, 2 * vc.BLEND_TOLERANCE):
        share = vc.carried_share(face, face + change, inside, 0.5)
        assert share.shape == (64, 64, 1) and share.dtype == np.float32
        np.testing.assert_allclose(share[:, 8:, 0], 0.5 * np.exp(-(change / vc.BLEND_TOLERANCE) ** 2), atol=1e-5)
        assert not share[:, :8].any()
    # the difference is the colours' mean: one channel off by 3 tolerances is one tolerance
    red = face.copy()
    red[..., 0] += 3 * vc.BLEND_TOLERANCE
    np.testing.assert_allclose(vc.carried_share(face, red, inside, 0.5)[:, 8:, 0], 0.5 * np.exp(-1), atol=1e-5)
    # and it is smoothed: one pixel off (a codec spike) barely lowers the share, even where it is
    spike = face.copy()
    spike[32, 40] += 4 * vc.BLEND_TOLERANCE
    assert vc.carried_share(face, spike, inside, 0.5)[32, 40, 0] > 0.45
    # an eye closing: only there does the previous face's share fall
    moved = face.copy()
    moved[24:40, 32:48] += 4 * vc.BLEND_TOLERANCE
    share = vc.carried_share(face, moved, inside, 0.5)[..., 0]
    assert share[32, 40] < 0.01 and share[4, 60] == pytest.approx(0.5, abs=1e-3)


def swapping_scene(scene):
    """`scene`'s clip in which its two faces swap lanes, crossfading from SWAP_AT for SWAP_SECONDS."""
    from video.scene import Scene

    class Swapping(Scene):
        def mix(self, index):
            return float(np.clip((index / float(self.fps) - SWAP_AT) / SWAP_SECONDS, 0, 1))

        def frame(self, index):
            a, b = self.originals
            m = self.mix(index)
            self.faces = [np.rint((1 - m) * x + m * y).astype(np.uint8) for x, y in ((a, b), (b, a))]
            return super().frame(index)

    swapping = Swapping(scene.faces, LR_SIZE, SECONDS, FPS, seed=3, factor=UPSCALE)
    swapping.originals = [f.astype(np.float32) for f in scene.faces]
    return swapping


SWAP_AT, SWAP_SECONDS = 1.0, 0.3


def test_a_face_that_changes_is_not_ghosted_by_the_blend(scene, model, tmp_path):
    """Faces that change (here: swap, a strong change) come out as well as without any blend while and
    just after they change: the previous face is not carried where the two differ."""
    from video.clip import super_resolve_video
    from video.scene import write_clip

    swapping = swapping_scene(scene)
    clip = write_clip(str(tmp_path / "swap.mp4"), swapping)
    changing = [i for i in range(swapping.count) if swapping.mix(i) > 0][:8]   # while and 0.5 s after
    gains = {}
    for blend in (0.0, 0.5):
        out = super_resolve_video(clip, str(tmp_path / f"swap_{blend}.mp4"), model.predict, upscale=UPSCALE,
                                  blend=blend, progress=False)
        outputs, inputs = decode(out.path), decode(clip)
        per = []
        for index in changing:
            hr, truths = swapping.frame(index)
            bicubic = cv2.resize(inputs[index], outputs[index].shape[1::-1], interpolation=cv2.INTER_CUBIC)
            per += [psnr(outputs[index], hr, r) - psnr(bicubic, hr, r) for r in (disc(t, hr.shape) for t in truths)]
        gains[blend] = np.mean(per)
    assert gains[0.5] >= gains[0.0] - 0.15, gains


def test_too_large_a_frame_is_refused_before_anything_is_written(clip, model, tmp_path):
    from video.clip import super_resolve_video

    out = tmp_path / "big_SR.mp4"
    with pytest.raises(sizes.PhotoTooLargeError, match="160x90"):
        super_resolve_video(clip, str(out), model.predict, upscale=UPSCALE, max_pixels=1000, progress=False)
    assert not os.listdir(tmp_path)


def test_a_file_that_only_claims_to_be_a_video_is_refused_in_one_line(model, tmp_path):
    from video.clip import super_resolve_video
    from video.io import VideoReadError

    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(VideoReadError) as err:
        super_resolve_video(str(fake), str(tmp_path / "fake_SR.mp4"), model.predict, progress=False)
    assert "fake.mp4" in str(err.value) and "\n" not in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["fake.mp4"]


def test_a_cut_off_video_is_super_resolved_up_to_where_decoding_stopped(scene, model, tmp_path):
    from video.clip import super_resolve_video
    from video.scene import write_clip

    # Matroska keeps its index in front: cut short, the frames before the cut still decode
    whole = write_clip(str(tmp_path / "whole.mkv"), scene)
    cut = tmp_path / "cut.mkv"
    data = open(whole, "rb").read()
    cut.write_bytes(data[:len(data) * 6 // 10])
    readable = len(decode(str(cut)))
    assert 0 < readable < scene.count
    result = super_resolve_video(str(cut), str(tmp_path / "cut_SR.mp4"), model.predict, progress=False)
    assert result.stopped is not None and f"stopped at frame {readable}" in result.stopped
    assert "cut.mkv" in result.stopped and "\n" not in result.stopped
    assert result.frames == readable == len(decode(result.path))
    assert result.report("cut.mkv").splitlines()[-1] == result.stopped


@pytest.mark.slow
def test_test_py_on_a_folder_of_a_photo_a_video_and_a_broken_video(clip, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.link(clip, folder / "clip.mp4")
    photo = cv2.resize(decode(clip)[5], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(folder / "still.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    (folder / "broken.mov").write_bytes(os.urandom(3000))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "test.py", "--real_world", "--test_path", str(folder), "--image_save_path",
                          str(out), "--upscale", "4"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "broken.mov" in run.stderr and "not a readable video" in run.stderr
    assert "1 photos, 1 videos" in run.stdout
    frames = decode(str(out / "clip_SR.mp4"))
    assert len(frames) == SECONDS * FPS and frames[0].shape == (LR_SIZE[1] * 4, LR_SIZE[0] * 4, 3)
    assert (out / "still_SR.png").is_file()
    assert not [n for n in os.listdir(out) if "partial" in n or n.startswith(".")]
    with open(out / "summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    entry = summary["photos_report"]["clip.mp4"]
    assert entry["frames"] == SECONDS * FPS and entry["fps"] == FPS and entry["audio"] == "aac"
    assert [f["status"] for f in entry["faces"]] == [ph.SUPER_RESOLVED] * 2
    assert summary["videos"] == 1 and summary["photos"] == 1 and summary["skipped"] == 1
    # one video named as --test_path, through the int8 generator: its output in a new run folder beside the first
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    again = subprocess.run([sys.executable, "test.py", "--real_world", "--test_path", str(folder / "clip.mp4"),
                            "--image_save_path", str(out), "--upscale", "2", "--detect_every", "3", "--int8"],
                           cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    frames = decode(str(out / "run_2" / "clip_SR.mp4"))
    assert len(frames) == SECONDS * FPS and frames[0].shape == (LR_SIZE[1] * 2, LR_SIZE[0] * 2, 3)
    with open(out / "run_2" / "summary.json", encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["precision"] == "int8" and summary["videos"] == 1
    assert [f["status"] for f in summary["photos_report"]["clip.mp4"]["faces"]] == [ph.SUPER_RESOLVED] * 2


def test_align_frame_side_of_the_truth_agrees_with_the_scene(scene):
    # the scene's faces span the sizes the model exists for, in the shrunk clip
    sides = [align.frame_side(t) for i in range(0, scene.count, 5) for t in scene.truths(i)]
    assert 16 - 1e-6 <= min(sides) and max(sides) <= 22 + 1e-6 and max(sides) - min(sides) > 2


def test_video_crops_and_batches_come_in_few_shapes_with_the_same_outputs():
    """The video path's crops (sides a multiple of CROP_MULTIPLE) in full batches: the generator sees few
    input shapes however long the clip, and each face's output is what it would be alone."""
    from video.clip import CROP_MULTIPLE

    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    sides = [16.5, 18.0, 19.3, 21.9, 23.0, 17.2, 20.4]
    matrices = [align.similarity_matrix(np.array([[0, 0], [FRAME, FRAME]]), np.array([[20 + 25 * k, 30],
                [20 + 25 * k + s, 30 + s]])) for k, s in enumerate(sides)]
    matrices = [align.invert(m) for m in matrices]   # photo -> frame
    crops = [align.input_crop(photo, m, multiple=CROP_MULTIPLE)[0] for m in matrices]
    plain = [align.input_crop(photo, m)[0] for m in matrices]
    for crop, alone in zip(crops, plain):
        assert crop.shape[0] % CROP_MULTIPLE == 0 and alone.shape[0] <= crop.shape[0] < alone.shape[0] + CROP_MULTIPLE
    seen = []

    def bicubic(lr):
        seen.append(lr.shape)
        return np.stack([cv2.resize(x, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC) for x in lr])

    padded = ph.generate(crops, bicubic, raw_output=True, full_batches=True)
    steps = {n: max(1, ph.MAX_BATCH_PIXELS // (n * 8) ** 2) for n in {c.shape[0] for c in crops}}
    assert seen and all(shape[0] == steps[shape[1]] for shape in seen)
    for crop, out in zip(crops, padded):
        np.testing.assert_array_equal(out, ph.generate([crop], bicubic, raw_output=True)[0])


def test_a_face_just_seen_and_missed_is_searched_for_again_about_its_predicted_box(monkeypatch):
    """`video.clip.search`: a face whose track was continued within tracks.MAX_GAP_SECONDS and that a
    frame's detection misses is searched for again about the track's predicted box, at each search
    while it is that recent; what that finds continues the track and joins the frame's faces unless
    it repeats one of them."""
    from faces.detect import Face
    from video import clip as vc
    from video.tracks import MAX_GAP_SECONDS

    def face(x):
        return Face(box=np.array([x, 10.0, x + 20, 30]), landmarks=np.zeros((5, 2)), confidence=0.9)

    detected = {0: [face(10), face(60), face(100)], 2: [face(11)], 4: [face(12)], 14: [face(13)], 16: [face(14)],
                18: [face(15)]}
    # at 2 the face at 100 is found again over the one at 11 (a second box of that face): not added;
    # the face at 60, found again at 61, is predicted at 62 by 4 and at 67 by 14 (0.5 px a frame)
    refound = {(2, 60): face(61), (2, 100): face(11.5), (4, 62): None, (4, 100): None, (14, 67): None}
    asked = []
    monkeypatch.setattr(vc.detect, "detect_faces", lambda frame, detector: list(detected[frame]))

    def near(frame, box, detector):
        asked.append((frame, round(float(box[0]), 6)))
        return refound[asked[-1]]

    monkeypatch.setattr(vc.detect, "detect_near", near)
    fps, live, found = 25.0, [], {}
    for index in sorted(detected):
        found[index], live = vc.search(index, index, live, None, fps)
    lefts = {i: sorted(float(f.box[0]) for f in faces) for i, faces in found.items()}
    assert lefts == {0: [10, 60, 100], 2: [11, 61], 4: [12], 14: [13], 16: [14], 18: [15]}
    # asked at 14 for the face last found at 2, not at 16, nor for the one last found at 0 after 4
    assert asked == [(2, 60.0), (2, 100.0), (4, 62.0), (4, 100.0), (14, 67.0)]
    assert (14 - 2) / fps <= MAX_GAP_SECONDS < (16 - 2) / fps and (4 - 0) / fps <= MAX_GAP_SECONDS < (14 - 0) / fps
    # one track left, of the face found at every search, holding only its last VELOCITY_DETECTIONS (5)
    kept = [[(i, float(f.box[0])) for i, f in chain] for chain in live]
    assert kept == [[(2, 11.0), (4, 12.0), (14, 13.0), (16, 14.0), (18, 15.0)]]
