"""Clips whose true faces are known: aligned face images moving and changing scale over a still
background, rendered at full resolution, shrunk and H.264 compressed as a video arrives. The tests
(tests/test_video.py) and `python -m scripts.video_bench` both make their clips here.

    scene = Scene(faces, lr_size=(160, 90), seconds=2, fps=10, seed=0)
    for hr, truths in scene.frames(): ...       # uint8 [8h, 8w, 3], one 2x3 map per face
    write_clip("clip.mp4", scene, crf=INPUT_CRF, tone_hz=TONE_HZ)

A face's frame side (the 128 training frame, in shrunk-frame px) swings between FRAME_PX and
FRAME_PX + FRAME_SWING; its centre swings about its lane's centre. Everything is a function of the
seed and the time, so the truth is regenerated for measuring instead of kept.
"""
import math
from fractions import Fraction

import av
import cv2
import numpy as np

from data.constants import CELEBA_CROP, CELEBA_SIZE, FRAME, SCALE
from faces.compose import background

# Faces of 16 to 22 px frames: the sizes the model exists for (16 is its own input).
FRAME_PX, FRAME_SWING = 16.0, 6.0
# The slowest and fastest swing, seconds per cycle, and the share of its lane a face's swing spans:
# a walk about the lane, not a dash across it.
PERIODS = (4.0, 10.0)
REACH = 0.6
# x264's constant rate factor of the shrunk clip: its default, what an encoder a user did not tune writes.
INPUT_CRF = 23
AUDIO_RATE = 48000
# The clips' sound: a tone, so a lost, cut or shifted track is heard, and measured by its frequency.
TONE_HZ = 440


class Scene:
    """Faces (uint8 RGB 178x218 aligned images) moving in lanes side by side; see the module doc."""

    def __init__(self, faces, lr_size, seconds, fps, seed=0, factor=SCALE):
        self.faces = [np.asarray(f) for f in faces]
        if any(f.shape[:2] != CELEBA_SIZE for f in self.faces):
            raise ValueError(f"faces must be {CELEBA_SIZE[1]}x{CELEBA_SIZE[0]} aligned images")
        self.lr_size, self.fps, self.factor = tuple(lr_size), Fraction(fps), int(factor)
        self.count = int(round(seconds * self.fps))
        rng = np.random.default_rng(seed)
        w, h = self.lr_size
        # drawn at the shrunk size and enlarged: a smooth backdrop, as behind people in a scene, rather
        # than confetti at every scale
        backdrop = cv2.resize(background(rng, h, w), (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
        self.background = np.clip(np.rint(backdrop), 0, 255).astype(np.uint8)
        n = len(self.faces)
        self.lanes = [(w * (i + 0.5) / n, h / 2) for i in range(n)]
        self.periods = rng.uniform(*PERIODS, (n, 3))   # x, y, scale
        self.phases = rng.uniform(0, 2 * math.pi, (n, 3))
        reach = w / (2 * n) - (FRAME_PX + FRAME_SWING) * CELEBA_SIZE[1] / CELEBA_CROP / 2
        self.reach = (REACH * max(0.0, reach),
                      REACH * max(0.0, h / 2 - (FRAME_PX + FRAME_SWING) * CELEBA_SIZE[0] / CELEBA_CROP / 2))

    def placement(self, face, index):
        """(tile scale, tile top-left in full-resolution px) of `face` at frame `index`."""
        t = index / float(self.fps)
        swing = np.sin(2 * math.pi * t / self.periods[face] + self.phases[face])
        side = FRAME_PX + FRAME_SWING * (swing[2] + 1) / 2                    # frame side, shrunk px
        scale = side * self.factor / CELEBA_CROP                               # tile px -> full-res px
        cx = (self.lanes[face][0] + self.reach[0] * swing[0] + 0.5) * self.factor - 0.5
        cy = (self.lanes[face][1] + self.reach[1] * swing[1] + 0.5) * self.factor - 0.5
        th, tw = CELEBA_SIZE
        return scale, (cx - scale * (tw - 1) / 2, cy - scale * (th - 1) / 2)

    def truth(self, face, index):
        """2x3 map shrunk-frame px -> the 128 frame of `face` at frame `index` (pixel centres)."""
        scale, (tx, ty) = self.placement(face, index)
        f, k = self.factor, FRAME / CELEBA_CROP
        top = (CELEBA_SIZE[0] - CELEBA_CROP) // 2
        # shrunk x -> full-res X = f x + (f - 1) / 2 -> tile u = (X - tx) / scale -> frame (u + 0.5) k - 0.5
        a = f * k / scale
        return np.array([[a, 0, ((f - 1) / 2 - tx) * k / scale + 0.5 * k - 0.5],
                         [0, a, ((f - 1) / 2 - ty) * k / scale - (top - 0.5) * k - 0.5]])

    def frame(self, index):
        """(uint8 [H, W, 3] full-resolution frame, [2x3 truth map per face]) at frame `index`."""
        hr = self.background.copy()
        for face, tile in enumerate(self.faces):
            scale, (tx, ty) = self.placement(face, index)
            th, tw = tile.shape[:2]
            x0, y0 = max(0, int(math.floor(tx))), max(0, int(math.floor(ty)))
            x1 = min(hr.shape[1], int(math.ceil(tx + scale * tw)))
            y1 = min(hr.shape[0], int(math.ceil(ty + scale * th)))
            m = np.array([[scale, 0, tx - x0], [0, scale, ty - y0]])
            size = (x1 - x0, y1 - y0)
            warped = cv2.warpAffine(tile, m, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT)
            inside = cv2.warpAffine(np.ones(tile.shape[:2], np.float32), m, size, flags=cv2.INTER_LINEAR)
            region = hr[y0:y1, x0:x1].astype(np.float32)
            hr[y0:y1, x0:x1] = np.rint(region + (warped - region) * inside[..., None]).astype(np.uint8)
        return hr, self.truths(index)

    def truths(self, index):
        """[2x3 truth map per face] at frame `index` (`truth`), without rendering the frame."""
        return [self.truth(face, index) for face in range(len(self.faces))]

    def frames(self):
        for index in range(self.count):
            yield self.frame(index)

    def shrunk(self, hr):
        """The frame as the clip holds it before compression: `hr` shrunk `factor` times (INTER_AREA)."""
        return cv2.resize(hr, self.lr_size, interpolation=cv2.INTER_AREA)


def write_clip(path, scene, crf=INPUT_CRF, tone_hz=None):
    """Write `scene` shrunk, as H.264 (yuv420p, x264 at `crf`) at its frame rate, with a sine tone of
    `tone_hz` (AAC, its whole length) if given; returns path."""
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=scene.fps)
        video.width, video.height = scene.lr_size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf)}
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if tone_hz else None
        for index, (hr, _) in enumerate(scene.frames()):
            frame = av.VideoFrame.from_ndarray(scene.shrunk(hr), format="rgb24")
            frame.pts = index
            frame.time_base = 1 / scene.fps
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            samples = int(round(scene.count / float(scene.fps) * AUDIO_RATE))
            t = np.arange(samples) / AUDIO_RATE
            tone = (0.3 * np.sin(2 * math.pi * tone_hz * t)).astype(np.float32)
            step = 1024
            for start in range(0, samples, step):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + step], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                out.mux(audio.encode(chunk))
            out.mux(audio.encode())
    return path
