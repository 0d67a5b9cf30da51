"""How much the video path helps, on a clip whose true faces are known (video/scene.py): the work of
`python -m scripts.video_bench` and of tests/test_video.py.

Measured on the decoded output file (its encoding included) against the full-resolution truth, in
each face's region (the paste mask's core, as scripts.real_world_bench measures photos):
* found: share of (frame, face) pairs a super-resolved track covers (its frame centre within a
  quarter frame of the truth's, paste weight >= 0.5);
* gain: face-region PSNR minus bicubic's (cv2.INTER_CUBIC of the decoded input frame);
* steadiness: mean absolute change from one frame to the next within the faces' regions, for the
  output, bicubic and the truth itself (the faces move: the truth's is not zero, and a sharper face
  changes more under the same motion);
* flicker: the same change once each face's true motion is taken out (the previous frame warped onto
  the current by the truth's similarity): what is left is jitter, flicker and codec noise, near zero
  for the truth.
"""
import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

from data.constants import CELEBA_SIZE, LR_SIZE
from data.images import list_images, read_image
from deploy.inference import load_inference
from deploy.int8 import int8_inference
from faces import align, paste, photo as ph
from faces.bench import cpu_label, frame_centre, region_psnr
from utils import fail
from video.clip import DETECT_EVERY, super_resolve_video
from video.io import VideoReader
from video.scene import INPUT_CRF, TONE_HZ, Scene, write_clip
from video.tracks import at_frame


def face_region(truth, shape, upscale):
    """bool [H, W]: the face's region in the upscaled frame (paste mask >= 0.5) for a truth map."""
    return paste.paste(np.zeros(shape, np.uint8), np.zeros((8, 8, 3), np.uint8), np.eye(2, 3), truth,
                       upscale) >= 0.5


def same_face(landmarks, truth):
    """Whether detected `landmarks` frame the true face: frame centres within a quarter frame."""
    centre = frame_centre(align.frame_matrix(landmarks))
    return np.linalg.norm(centre - frame_centre(truth)) < align.frame_side(truth) / 4


def covered(tracks, index, truth):
    """Whether a track covers the true face at frame `index` with a paste weight >= 0.5."""
    return any(weight >= 0.5 and same_face(landmarks, truth) for _, landmarks, weight in at_frame(tracks, index))


def follows_a_face(track, scene):
    """Whether `track`, at its middle frame, frames one of the scene's true faces."""
    middle = len(track.frames) // 2
    return any(same_face(track.landmarks[middle], t) for t in scene.truths(int(track.frames[middle])))


@dataclasses.dataclass
class ClipMeasure:
    frames: int
    pairs: int              # (frame, face) pairs
    found: float            # % of pairs super-resolved
    gain: float             # mean face-region gain over bicubic, dB
    worst_frame: float      # lowest per-frame mean gain, dB
    improved: float         # % of pairs above bicubic by more than 0.05 dB
    change_sr: float        # steadiness: mean |frame t - frame t-1| in the faces' regions
    change_bicubic: float
    change_truth: float
    flicker_sr: float       # motion-compensated change, see the module doc
    flicker_bicubic: float
    flicker_truth: float
    false_tracks: int       # super-resolved tracks that follow no true face

    @property
    def steadiness_ratio(self):
        return self.change_sr / self.change_bicubic


def output_map(truth, upscale):
    """3x3 map output px -> the 128 frame, for a truth map shrunk px -> frame."""
    half = (upscale - 1) / (2 * upscale)
    to_shrunk = np.array([[1 / upscale, 0, -half], [0, 1 / upscale, -half], [0, 0, 1]])
    return np.vstack([truth, [0, 0, 1]]) @ to_shrunk


def motion_change(now, before, truth_now, truth_before, region, upscale):
    """Mean |now - before moved by the face's true motion| within `region` (bool [H, W])."""
    ys, xs = np.nonzero(region)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    # before's px -> now's px: through the face's frame, then the crop's offset
    move = np.linalg.inv(output_map(truth_now, upscale)) @ output_map(truth_before, upscale)
    move = (np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ move)[:2]
    moved = cv2.warpAffine(before, move, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = region[y0:y1, x0:x1]
    return float(np.abs(now[y0:y1, x0:x1][inside].astype(np.float32) - moved[inside].astype(np.float32)).mean())


def measure_clip(scene, clip_path, output_path, tracks, upscale):
    """`ClipMeasure` of the output at `output_path` made from `clip_path` (the shrunk, compressed
    `scene`) whose super-resolved tracks are `tracks`."""
    pairs = hits = improved = 0
    gains, frame_gains, changes = [], [], {"sr": [], "bicubic": [], "truth": []}
    flickers = {key: [] for key in changes}
    previous = previous_truths = None
    with VideoReader(clip_path) as clip, VideoReader(output_path) as output:
        for index, ((hr, truths), small, out) in enumerate(zip(scene.frames(), clip, output)):
            h, w = small.shape[:2]
            bicubic = cv2.resize(small, (w * upscale, h * upscale), interpolation=cv2.INTER_CUBIC)
            regions = [face_region(t, hr.shape, upscale) for t in truths]
            these = []
            for truth, region in zip(truths, regions):
                pairs += 1
                hits += covered(tracks, index, truth)
                gain = region_psnr(out, hr, region) - region_psnr(bicubic, hr, region)
                improved += gain > 0.05
                these.append(gain)
            gains += these
            frame_gains.append(np.mean(these))
            union = np.any(regions, axis=0)
            now = {"sr": out, "bicubic": bicubic, "truth": hr}
            if previous is not None:
                for key in changes:
                    diff = now[key][union].astype(np.float32) - previous[key][union].astype(np.float32)
                    changes[key].append(float(np.abs(diff).mean()))
                    flickers[key].append(np.mean([motion_change(now[key], previous[key], t, b, r, upscale)
                                                  for t, b, r in zip(truths, previous_truths, regions)]))
            previous, previous_truths = now, truths
        frames = index + 1
    false = sum(not follows_a_face(track, scene) for track in tracks)
    return ClipMeasure(frames=frames, pairs=pairs, found=100 * hits / pairs, gain=float(np.mean(gains)),
                       worst_frame=float(np.min(frame_gains)), improved=100 * improved / pairs,
                       change_sr=float(np.mean(changes["sr"])), change_bicubic=float(np.mean(changes["bicubic"])),
                       change_truth=float(np.mean(changes["truth"])), flicker_sr=float(np.mean(flickers["sr"])),
                       flicker_bicubic=float(np.mean(flickers["bicubic"])),
                       flicker_truth=float(np.mean(flickers["truth"])), false_tracks=false)


def photo_path_seconds(clip_path, predict, upscale, frames):
    """Seconds per frame of the photo path (faces.photo, each frame on its own) over the first `frames`."""
    spent, count = 0.0, 0
    with VideoReader(clip_path) as clip:
        for frame in clip:
            start = time.perf_counter()
            ph.super_resolve_photo(frame, predict, upscale=upscale)
            spent += time.perf_counter() - start
            count += 1
            if count == frames:
                break
    return spent / count


def peak_memory_mb(argv):
    """Peak resident memory (MB) of `python argv...` run in a process of its own."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL,"
             " stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, *argv], check=True, capture_output=True,
                         text=True).stdout
    return int(out.split()[-1]) / 1024


def draw_faces(folder, count, seed):
    """`count` aligned 178x218 images of `folder`, drawn at random."""
    paths = list_images(folder)
    faces = []
    for i in np.random.default_rng(seed).permutation(len(paths)):
        image = read_image(paths[i])
        if image.shape[:2] == CELEBA_SIZE:
            faces.append(image)
        if len(faces) == count:
            return faces
    fail("video_bench", f"fewer than {count} 178x218 images under {folder}")


def load_model(args):
    if args.int8:
        return int8_inference(args.weight_path, LR_SIZE, 16, log=lambda line: print(line, file=sys.stderr))
    return load_inference(args.weight_path)


def run(args):
    """The benchmark scripts/video_bench.py's `args` ask for: prints and returns its figures."""
    work = args.work_dir or tempfile.mkdtemp(prefix="eipnet-video-bench-")
    os.makedirs(work, exist_ok=True)
    faces = draw_faces(args.faces, args.count, args.seed)
    scene = Scene(faces, args.size, args.seconds, args.fps, args.seed, factor=args.upscale)
    crf = INPUT_CRF if args.crf is None else args.crf
    clip = write_clip(os.path.join(work, "clip.mp4"), scene, crf=crf, tone_hz=TONE_HZ)
    model = load_model(args)
    options = {} if args.detect_every is None else {"detect_every": args.detect_every}
    result = super_resolve_video(clip, os.path.join(work, "clip_SR.mp4"), model.predict, upscale=args.upscale,
                                 match_sigma=args.match_sigma, **options)
    print(result.report("clip.mp4"))
    chosen = [t for t, f in zip(result.tracks, result.faces) if f["status"] == ph.SUPER_RESOLVED]
    m = measure_clip(scene, clip, result.path, chosen, args.upscale)
    figures = {**dataclasses.asdict(m), "steadiness_ratio": m.steadiness_ratio,
               "frames_per_second": result.frames / result.seconds["total"], "seconds": dict(result.seconds)}
    if args.photo_frames:
        per_frame = photo_path_seconds(clip, model.predict, args.upscale, args.photo_frames)
        figures["photo_seconds_per_frame"] = per_frame
        figures["video_over_photo"] = (result.seconds["total"] / result.frames) / per_frame
    if args.memory:
        longer = Scene(faces, args.size, args.seconds * args.memory, args.fps, args.seed, factor=args.upscale)
        long_clip = write_clip(os.path.join(work, "long.mp4"), longer, crf=crf, tone_hz=TONE_HZ)
        for key, path in (("memory_mb", clip), ("memory_long_mb", long_clip)):
            figures[key] = peak_memory_mb(
                ["test.py", "--real_world", "--test_path", path, "--weight_path", args.weight_path,
                 "--upscale", str(args.upscale), "--image_save_path", os.path.join(work, f"run_{key}")]
                + (["--int8"] if args.int8 else []))
    print(f"video path, {args.count} faces from {args.faces}, {args.size[0]}x{args.size[1]} at {args.fps} fps, "
          f"{args.seconds:g} s, x264 CRF {crf}, x{args.upscale}, weights {args.weight_path}"
          f"{' (int8)' if args.int8 else ''}, detection every {options.get('detect_every', DETECT_EVERY)} frames, "
          f"--match_sigma {result.match_sigma:g}; {cpu_label()}; clips in {work}")
    print(table(figures))
    return figures


def table(figures):
    rows = [("frames", f"{figures['frames']}"),
            ("faces super-resolved (of frame-face pairs)", f"{figures['found']:.1f}%"),
            ("false tracks", f"{figures['false_tracks']}"),
            ("face-region gain over bicubic", f"{figures['gain']:+.2f} dB"),
            ("worst frame's mean gain", f"{figures['worst_frame']:+.2f} dB"),
            ("pairs improved", f"{figures['improved']:.0f}%"),
            ("frame-to-frame change: output / bicubic / truth",
             f"{figures['change_sr']:.2f} / {figures['change_bicubic']:.2f} / {figures['change_truth']:.2f}"),
            ("steadiness ratio (output / bicubic)", f"{figures['steadiness_ratio']:.3f}"),
            ("flicker, true motion taken out: output / bicubic / truth",
             f"{figures['flicker_sr']:.2f} / {figures['flicker_bicubic']:.2f} / {figures['flicker_truth']:.2f}"),
            ("frames/s (both passes, encoding included)", f"{figures['frames_per_second']:.2f}")]
    if "photo_seconds_per_frame" in figures:
        rows.append(("photo path, s per frame; video / photo time per frame",
                     f"{figures['photo_seconds_per_frame']:.2f}; {figures['video_over_photo']:.2f}"))
    if "memory_mb" in figures:
        rows.append(("test.py peak memory: clip / longer clip (MB)",
                     f"{figures['memory_mb']:.0f} / {figures['memory_long_mb']:.0f}"))
    return "\n".join(["| figure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])
