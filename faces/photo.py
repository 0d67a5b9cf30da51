"""Super-resolving the faces of an ordinary photo: the one entry point test.py and the demo share.

    from faces.photo import super_resolve_photo
    result = super_resolve_photo(photo, predict, upscale=4)
    result.composed        # uint8 [H * 4, W * 4, 3]
    result.faces           # one dict per face found: box, frame_px, confidence, status
    result.report("x.jpg") # the one console line

The output is the photo upscaled bicubically, with each face the model can
help replaced by its super-resolution: the generator (convolutional) is fed
the photo's own pixels about the face (`align.input_crop`: nothing is
interpolated before the model), its 8x output is corrected to agree with that
input at the input's scale (`match_input`) and warped back once into the
upscaled photo, blended over the face only. Detection is faces/detect.py, geometry
faces/align.py, pasting back faces/paste.py.

Which faces (status of each):
* "super-resolved": the face's frame spans at most `max_frame` photo px;
* "too large for the 8x model: left as bicubic": the frame spans more than
  `max_frame` photo px, beyond what the benchmark measured, and the
  generator's cost grows with the face's area (`force_large` super-resolves
  it anyway);
* "too small: left as bicubic": its box is under `min_face` px;
* "too compressed for the model: left as bicubic": the photo's JPEG quality
  (`jpeg.estimate_quality`) is under MIN_JPEG_QUALITY.
"""
import dataclasses
import time

import cv2
import numpy as np

from data.constants import COMPRESSED_MATCH_SIGMA, FRAME, SCALE
from data.degradation import match_input
from faces import align, detect, jpeg, paste, sizes
from utils import to_uint8

SUPER_RESOLVED = "super-resolved"
TOO_LARGE = "too large for the 8x model: left as bicubic"
TOO_SMALL = "too small: left as bicubic"
TOO_COMPRESSED = "too compressed for the model: left as bicubic"
MIN_PHOTO_SIDE = 8   # a photo narrower than this cannot hold a face: not searched
# Faces whose frame spans more photo px were not measured by `python -m scripts.real_world_bench`,
# and cost the generator quadratically more: they stay bicubic. Every box the detector finds is
# worth super-resolving: no lower limit (docs/evaluation.md, "How much it helps on real photos").
MAX_FRAME = 96.0
MIN_FACE = 0.0
# Below this JPEG quality the model's faces are no better than bicubic's on average and some are
# clearly worse: they stay bicubic (docs/evaluation.md, "Correcting the output on compressed inputs").
MIN_JPEG_QUALITY = 25
# Output pixels per generator call: test.py's 16 faces of 128x128. Its activations grow with the
# output's area, so larger faces go through a few at a time (docs/evaluation.md, "Real photos").
MAX_BATCH_PIXELS = 16 * FRAME * FRAME


@dataclasses.dataclass
class PhotoResult:
    """What `super_resolve_photo` made of one photo."""
    composed: np.ndarray   # uint8 [H * upscale, W * upscale, 3]
    faces: list            # dicts, left to right: box [x1, y1, x2, y2], frame_px, confidence, status
    lr: dict               # face index -> uint8 [n, n, 3] generator input (super-resolved faces)
    sr: dict               # face index -> uint8 [8n, 8n, 3] generator output, corrected
    matrices: list         # 2x3 photo -> 128 frame, one per face
    upscale: int
    seconds: dict          # detect, generator, total
    max_frame: float = MAX_FRAME
    min_face: float = MIN_FACE
    note: str = ""         # why nothing was searched, if so
    jpeg_quality: int | None = None   # faces.jpeg's estimate for the photo (None: no sign of JPEG)
    match_sigma: float = 0.0          # the correction's smoothing the faces got (match_input)

    def count(self, status):
        return sum(f["status"] == status for f in self.faces)

    def report(self, name="photo"):
        """One line for the console."""
        if self.note:
            return f"{name}: {self.note}: bicubic output"
        if not self.faces:
            return f"{name}: no face found: bicubic output"
        parts = [f"{self.count(SUPER_RESOLVED)} of {len(self.faces)} face{'s' if len(self.faces) != 1 else ''} "
                 f"{SUPER_RESOLVED}"]
        large = [f for f in self.faces if f["status"] == TOO_LARGE]
        if large:
            frames = ", ".join(f"{face['frame_px']:.0f}" for face in large)
            parts.append(f"{len(large)} {TOO_LARGE} (frame {frames} px > {self.max_frame:g}; "
                         f"--force_large super-resolves them)")
        small = self.count(TOO_SMALL)
        if small:
            parts.append(f"{small} {TOO_SMALL} (box under --min_face {self.min_face:g} px)")
        compressed = self.count(TOO_COMPRESSED)
        if compressed:
            parts.append(f"{compressed} {TOO_COMPRESSED} (JPEG quality about {self.jpeg_quality}, "
                         f"under {MIN_JPEG_QUALITY})")
        if self.jpeg_quality is not None and not compressed:
            parts.append(f"JPEG quality about {self.jpeg_quality}: smoothed correction")
        return f"{name}: " + "; ".join(parts) + f" [{self.seconds['total']:.1f} s]"


def _run_predict(predict, lr):
    """float32 [N, 8n, 8n, 3] from predict(lr float32 [N, n, n, 3]); a tuple output's first item."""
    out = predict(lr.astype(np.float32))
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = np.asarray(out, np.float32)
    expected = (lr.shape[0], lr.shape[1] * SCALE, lr.shape[2] * SCALE, 3)
    if out.shape != expected:
        raise ValueError(f"predict returned shape {out.shape}, expected {expected}")
    return out


def status_of(size, frame_px, min_face=MIN_FACE, max_frame=MAX_FRAME, force_large=False, jpeg_quality=None):
    """The status of a face whose detected box's longer side is `size` px and whose frame spans `frame_px`."""
    if size < min_face:
        return TOO_SMALL
    if jpeg_quality is not None and jpeg_quality < MIN_JPEG_QUALITY:
        return TOO_COMPRESSED
    if frame_px > max_frame and not force_large:
        return TOO_LARGE
    return SUPER_RESOLVED


def generate(inputs, predict, raw_output=False, match_sigma=0.0, full_batches=False):
    """The generator's outputs (uint8 [8n, 8n, 3]) for input crops (uint8 [n, n, 3], any mix of sizes,
    e.g. faces of several video frames), corrected by `match_input` with `match_sigma` unless `raw_output`.
    `full_batches` pads each call to its size's full batch (repeating its last crop), so a long run
    meets few input shapes: the generator's memory grows with every shape it has run."""
    outputs = [None] * len(inputs)
    by_size = {}
    for k, crop in enumerate(inputs):
        by_size.setdefault(crop.shape[0], []).append(k)
    for n, same_size in by_size.items():   # batches of one crop size within MAX_BATCH_PIXELS
        step = max(1, MAX_BATCH_PIXELS // (n * SCALE) ** 2)
        for i in range(0, len(same_size), step):
            ks = same_size[i:i + step]
            batch = [inputs[k] for k in ks] + [inputs[ks[-1]]] * ((step - len(ks)) if full_batches else 0)
            for k, sr in zip(ks, _run_predict(predict, np.stack(batch))):
                outputs[k] = to_uint8(sr if raw_output else match_input(sr, inputs[k], match_sigma))
    return outputs


def super_resolve_faces(photo, matrices, predict, raw_output=False, match_sigma=0.0):
    """(inputs, outputs, image maps) for faces whose 128-frame maps are `matrices`: the generator's
    input crops (uint8 [n, n, 3], `align.input_crop`), their outputs (`generate`) and each output's
    photo -> output-pixel 2x3 map."""
    inputs, maps = zip(*(align.input_crop(photo, m) for m in matrices)) if matrices else ((), ())
    return list(inputs), generate(inputs, predict, raw_output, match_sigma), list(maps)


def super_resolve_photo(photo, predict, upscale=SCALE, min_face=MIN_FACE, max_frame=MAX_FRAME,
                        force_large=False, detector=None, max_pixels=sizes.MAX_OUTPUT_PIXELS, raw_output=False,
                        match_sigma=None):
    """Every face of a uint8 RGB photo [H, W, 3] the model can help, super-resolved; a `PhotoResult`.

    predict(lr float32 [N, n, n, 3] on [0, 255]) -> float [N, 8n, 8n, 3] or a
    tuple whose first item is that (the generator's outputs; it is fully
    convolutional, n >= 16 is the face's crop, see `align.input_crop`). upscale:
    whole number >= 1, the output is exactly upscale x the photo's size. The
    size check runs first: a too-large request raises
    sizes.PhotoTooLargeError (a ValueError). Faces are classified by
    `status_of`; all but the super-resolved ones stay bicubic, as does a
    photo without faces or under MIN_PHOTO_SIDE px. The generator's outputs
    are corrected by `match_input` with `match_sigma`; by default (None) fully for a photo without
    sign of JPEG compression, smoothed (COMPRESSED_MATCH_SIGMA) for one with, so its blocks are not
    put back (`jpeg.estimate_quality`: each face reports it); `raw_output` pastes them as they are.
    """
    start = time.perf_counter()
    photo = sizes.check_photo(photo)
    h, w = photo.shape[:2]
    out_h, out_w = sizes.check_output_size(h, w, upscale, max_pixels)
    upscale = int(upscale)
    composed = cv2.resize(photo, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    result = PhotoResult(composed=composed, faces=[], lr={}, sr={}, matrices=[], upscale=upscale,
                         seconds={"detect": 0.0, "generator": 0.0, "total": 0.0},
                         max_frame=float(max_frame), min_face=float(min_face))
    if min(h, w) < MIN_PHOTO_SIDE:
        result.note = f"too small to hold a face ({w}x{h} px, under {MIN_PHOTO_SIDE} px)"
        result.seconds["total"] = time.perf_counter() - start
        return result
    found = detect.detect_faces(photo, detector)
    result.seconds["detect"] = time.perf_counter() - start
    result.jpeg_quality = jpeg.estimate_quality(photo)
    if match_sigma is None:
        match_sigma = 0.0 if result.jpeg_quality is None else COMPRESSED_MATCH_SIGMA
    result.match_sigma = float(match_sigma)
    chosen = []
    for k, face in enumerate(found):
        matrix = align.frame_matrix(face.landmarks)
        frame_px = align.frame_side(matrix)
        status = status_of(face.size, frame_px, min_face, max_frame, force_large, result.jpeg_quality)
        result.matrices.append(matrix)
        result.faces.append({"box": [round(float(v), 1) for v in face.box], "frame_px": round(frame_px, 1),
                             "confidence": round(face.confidence, 4), "status": status,
                             "jpeg_quality": result.jpeg_quality})
        if status == SUPER_RESOLVED:
            chosen.append(k)
    if chosen:
        t = time.perf_counter()
        inputs, outputs, maps = super_resolve_faces(photo, [result.matrices[k] for k in chosen], predict,
                                                      raw_output, match_sigma)
        result.seconds["generator"] = time.perf_counter() - t
        for k, lr, sr, image_map in zip(chosen, inputs, outputs, maps):
            result.lr[k], result.sr[k] = lr, sr
            paste.paste(composed, sr, image_map, result.matrices[k], upscale)
    result.seconds["total"] = time.perf_counter() - start
    return result
