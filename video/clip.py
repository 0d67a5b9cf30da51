"""Super-resolving the faces of a video: the real-photo path (faces/photo.py) over every frame, steady.

    from video.clip import super_resolve_video
    result = super_resolve_video("clip.mp4", "clip_SR.mp4", predict, upscale=8)
    result.report("clip.mp4")   # the one console line

Two passes over the file, so memory does not grow with the clip's length:

1. faces are detected every `detect_every` frames (and in the last), then linked into tracks whose
   landmarks are interpolated between searches and smoothed over time (video/tracks.py);
2. each frame is upscaled bicubically and every track's face is cut from the frame's own pixels,
   super-resolved (a few frames' faces per generator call) and pasted back, fading in and out where
   a track starts or ends inside the clip; frames are encoded as they are made (video/io.py), with
   the input's audio.

A track is kept bicubic as a whole, by the photo path's rules (`faces.photo.status_of`) applied to
its median box and frame, so a face does not switch between bicubic and super-resolved.
"""
import dataclasses
import time

import cv2
import numpy as np
from tqdm import tqdm

from data.constants import COMPRESSED_MATCH_SIGMA, SCALE
from faces import align, detect, paste, photo as ph, sizes
from video import tracks as tr
from video.io import PLAYABLE_PIXELS, VideoReader, VideoWriter

# Faces are searched every DETECT_EVERY frames and followed by interpolation between searches:
# detection is the path's largest cost, and faces move little in a few frames
# (docs/evaluation.md, "Video").
DETECT_EVERY = 2
# Frames whose faces go through the generator together (with faces.photo's MAX_BATCH_PIXELS): fewer,
# larger calls; only these low-resolution frames are held, each is upscaled when it is written.
BATCH_FRAMES = 4
# Faces go to the generator as crops of a multiple of CROP_MULTIPLE px, in full batches: a clip then
# meets a few input shapes however long it is, and the generator's memory, which grows with each new
# shape, stays flat (docs/evaluation.md, "Video").
CROP_MULTIPLE = 8
# Each pasted face is up to TEMPORAL_BLEND its previous frame's (moved by the face's motion), the rest
# the generator's own: the generator's output of a compressed face changes with the codec's noise from
# frame to frame, which a viewer sees as flicker. Where the two differ by about BLEND_TOLERANCE grey
# levels (their difference smoothed over BLEND_SMOOTH input px) the face itself changed, a blink or a
# word, and the previous face's share falls off (Gaussian in the difference), so the change is not
# ghosted (docs/evaluation.md, "Video").
TEMPORAL_BLEND = 0.5
BLEND_TOLERANCE = 15.0
BLEND_SMOOTH = 0.5


@dataclasses.dataclass
class VideoResult:
    """What `super_resolve_video` made of one video."""
    path: str               # the output written
    frames: int             # frames written (= frames decoded)
    fps: object             # fractions.Fraction, the input's and the output's
    size: tuple             # output (width, height)
    faces: list             # one dict per face track: first, last, detections, box_px, frame_px, status
    tracks: list            # the tracks themselves (video.tracks.Track), in the order of `faces`
    frames_with_face: int   # frames in which at least one face was super-resolved
    audio: str | None       # the input's audio codec (kept in the output), None without audio
    seconds: dict           # detect, generator, total
    match_sigma: float
    stopped: str | None = None   # the reader's warning when decoding stopped early

    def count(self, status):
        return sum(f["status"] == status for f in self.faces)

    def report(self, name="video"):
        """One line for the console."""
        fps = self.frames / self.seconds["total"] if self.seconds["total"] else 0.0
        parts = [f"{self.frames} frames", f"{self.count(ph.SUPER_RESOLVED)} of {len(self.faces)} face "
                 f"track{'s' if len(self.faces) != 1 else ''} {ph.SUPER_RESOLVED}",
                 f"faces in {self.frames_with_face} frames"]
        for status in (ph.TOO_LARGE, ph.TOO_SMALL):
            if self.count(status):
                parts.append(f"{self.count(status)} {status}")
        parts.append("audio kept" if self.audio else "no audio")
        if self.size[0] * self.size[1] > PLAYABLE_PIXELS:
            parts.append(f"{self.size[0]}x{self.size[1]}: larger than browsers and phones may play (a lower "
                         "--upscale keeps it under 4096x2304)")
        line = f"{name}: " + "; ".join(parts) + f" [{self.seconds['total']:.1f} s, {fps:.2f} frames/s]"
        return line + (f"\n{self.stopped}" if self.stopped else "")


def search(frame, index, live, detector, fps):
    """(faces of the searched frame `index`, the open tracks `live` brought up to it).

    live: [[(frame, Face), ...]], the last detections of each face found at the searches of the last
    tracks.MAX_GAP_SECONDS, continued by this frame's faces as the tracks are (`tracks.extend`). A
    face there that this frame's detection missed is looked for again about its track's predicted
    box (`detect.detect_near`): a dark or half-hidden face scores under the detector's thresholds at
    some frames, and would otherwise drop out of its track for longer than a track bridges.
    """
    faces = detect.detect_faces(frame, detector)
    live = [chain for chain in live if (index - chain[-1][0]) / fps <= tr.MAX_GAP_SECONDS]
    left, missed = tr.extend(live, faces, index, fps)
    for chain in missed:
        again = detect.detect_near(frame, tr.predicted_box(chain, index), detector)
        # two tracks of one face find it once
        if again is not None and not (faces and tr.box_iou([again.box], [f.box for f in faces]).max() >= tr.LINK_IOU):
            chain.append((index, again))
            faces.append(again)
    live = [chain[-tr.VELOCITY_DETECTIONS:] for chain in live] + [[(index, face)] for face in left]
    return faces, live


def detect_pass(path, detector, detect_every, progress):
    """({frame: [Face]} of the searched frames, frame count, VideoInfo, reader warning): every
    `detect_every`-th frame and the last one searched (`search`)."""
    found, live = {}, []
    with VideoReader(path) as reader:
        info = reader.info
        fps = float(info.fps)
        last, count = None, 0
        for index, frame in enumerate(tqdm(reader, total=info.frames, desc="finding faces", unit="frame",
                                           disable=not progress)):
            if index % detect_every == 0:
                found[index], live = search(frame, index, live, detector, fps)
                last = None
            else:
                last = frame
            count = index + 1
        if last is not None:
            found[count - 1], _ = search(last, count - 1, live, detector, fps)
        return found, count, info, reader.stopped


def track_status(track, min_face, max_frame, force_large):
    """The photo path's status for a whole track, on its median box side and frame side."""
    size = float(np.median(np.max(track.boxes[:, 2:] - track.boxes[:, :2], axis=1)))
    frame_px = float(np.median([align.frame_side(align.frame_matrix(p)) for p in track.landmarks]))
    return ph.status_of(size, frame_px, min_face, max_frame, force_large), size, frame_px


def carry_over(previous, image_map, matrix, shape):
    """The previous frame's blended face (float32, its image map and face matrix) moved onto this frame's
    output grid by the face's motion (photo -> photo through the two face matrices), and where it lands."""
    before, before_map, before_matrix = previous
    motion = align.chain(align.invert(matrix), before_matrix)            # previous photo -> this photo
    to_here = align.chain(image_map, align.chain(motion, align.invert(before_map)))
    size = (shape[1], shape[0])
    moved = cv2.warpAffine(before, to_here, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(before.shape[:2], np.float32), to_here, size, flags=cv2.INTER_LINEAR) > 0.999
    return moved, inside


def carried_share(face, moved, inside, blend):
    """float32 [H, W, 1]: the share of the previous face `moved` in this frame's `face` (both float32
    [H, W, 3]; `inside`: bool [H, W], where `moved` has pixels), `blend` where they agree."""
    change = cv2.GaussianBlur(np.abs(face - moved).mean(axis=-1), (0, 0), BLEND_SMOOTH * SCALE)
    return (blend * np.exp(-(change / BLEND_TOLERANCE) ** 2) * inside)[..., None].astype(np.float32)


def render(frames, first_index, chosen, predict, writer, upscale, raw_output, match_sigma, memory, blend):
    """Write `frames` (consecutive from `first_index`) upscaled, with the faces of the `chosen` tracks
    super-resolved in one `faces.photo.generate` call, each blended with up to `blend` of its previous
    frame's face moved by the face's motion (`carried_share`; `memory`: track -> that face, kept across
    calls); returns (frames with a face, generator seconds)."""
    jobs = []   # (frame in batch, track, crop, image map, face matrix, weight)
    for k, frame in enumerate(frames):
        for track, landmarks, weight in tr.at_frame(chosen, first_index + k):
            matrix = align.frame_matrix(landmarks)
            crop, image_map = align.input_crop(frame, matrix, multiple=CROP_MULTIPLE)
            jobs.append((k, id(track), crop, image_map, matrix, weight))
    start = time.perf_counter()
    outputs = ph.generate([j[2] for j in jobs], predict, raw_output, match_sigma, full_batches=True)
    seconds = time.perf_counter() - start
    with_face = set()
    for k, frame in enumerate(frames):
        h, w = frame.shape[:2]
        canvas = cv2.resize(frame, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC)
        for (j, track, _, image_map, matrix, weight), sr in zip(jobs, outputs):
            if j != k:
                continue
            face = sr.astype(np.float32)
            previous = memory.get(track)
            if blend and previous is not None and previous[0] == first_index + k - 1:
                moved, inside = carry_over(previous[1:], image_map, matrix, face.shape)
                face += carried_share(face, moved, inside, blend) * (moved - face)
            memory[track] = (first_index + k, face, image_map, matrix)
            paste.paste(canvas, face, image_map, matrix, upscale, weight)
            with_face.add(k)
        for gone in [t for t, kept in memory.items() if kept[0] < first_index + k]:   # tracks that ended
            del memory[gone]
        writer.write(canvas)
    return len(with_face), seconds


def super_resolve_video(path, out_path, predict, upscale=SCALE, min_face=ph.MIN_FACE, max_frame=ph.MAX_FRAME,
                        force_large=False, detector=None, max_pixels=sizes.MAX_OUTPUT_PIXELS, raw_output=False,
                        match_sigma=None, detect_every=DETECT_EVERY, blend=TEMPORAL_BLEND, progress=True):
    """Every face of the video at `path` the model can help, super-resolved, written to `out_path` (H.264
    at `upscale` times the frame size, the input's frame rate and audio); a `VideoResult`.

    predict: as `faces.photo.super_resolve_photo`'s. The size check runs first (a frame too large
    raises sizes.PhotoTooLargeError); an unreadable file raises video.io.VideoReadError. The
    correction (`match_input`) is smoothed by `match_sigma`, by default COMPRESSED_MATCH_SIGMA: video
    codecs compress in blocks, as JPEG does (docs/evaluation.md, "Video").
    """
    start = time.perf_counter()
    with VideoReader(path) as probe:
        width, height = probe.info.width, probe.info.height
    sizes.check_output_size(height, width, upscale, max_pixels)
    upscale = int(upscale)
    match_sigma = COMPRESSED_MATCH_SIGMA if match_sigma is None else float(match_sigma)
    detector = detector or detect.default_detector()
    found, count, info, stopped = detect_pass(path, detector, detect_every, progress)
    seconds = {"detect": time.perf_counter() - start, "generator": 0.0}
    tracks = tr.build_tracks(found, count, float(info.fps))
    rows, chosen = [], []
    for track in tracks:
        status, size, frame_px = track_status(track, min_face, max_frame, force_large)
        rows.append({"first": int(track.frames[0]), "last": int(track.frames[-1]),
                     "detections": int(track.detected.sum()), "box_px": round(size, 1),
                     "frame_px": round(frame_px, 1), "status": status})
        if status == ph.SUPER_RESOLVED:
            chosen.append(track)
    with_face, memory = 0, {}
    with VideoReader(path) as reader, \
            VideoWriter(out_path, width * upscale, height * upscale, info.fps, audio_from=path) as writer:
        batch, first = [], 0
        for index, frame in enumerate(tqdm(reader, total=count, desc="super-resolving", unit="frame",
                                           disable=not progress)):
            if index >= count:   # the first pass stopped here: both passes give the same frames
                break
            batch.append(frame)
            if len(batch) == BATCH_FRAMES:
                done, spent = render(batch, first, chosen, predict, writer, upscale, raw_output, match_sigma, memory,
                                     blend)
                with_face, seconds["generator"] = with_face + done, seconds["generator"] + spent
                batch, first = [], index + 1
        if batch:
            done, spent = render(batch, first, chosen, predict, writer, upscale, raw_output, match_sigma, memory,
                                     blend)
            with_face, seconds["generator"] = with_face + done, seconds["generator"] + spent
        written = first + len(batch)
    seconds["total"] = time.perf_counter() - start
    return VideoResult(path=out_path, frames=written, fps=info.fps, size=(width * upscale, height * upscale),
                       faces=rows, tracks=tracks, frames_with_face=with_face, audio=info.audio, seconds=seconds,
                       match_sigma=match_sigma, stopped=stopped)
