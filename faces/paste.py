"""Pasting a super-resolved face back: warped once into the photo upscaled x`upscale` (a whole-pixel shift
at 8), blended by `face_mask` placed by the face's frame: the face, not its frame's corners.
"""

import cv2
import numpy as np

from data.constants import FRAME
from faces.align import matrix_scale, output_matrix
from utils import to_uint8

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


def paste(canvas, image, image_matrix, face_matrix, upscale, weight=1.0):
    """Blend a super-resolved `image` into `canvas` (the photo upscaled x`upscale`) over the face, in place.

    image_matrix: photo -> image pixels (from `input_crop`); face_matrix:
    photo -> 128 frame, which places `face_mask`. One warp (INTER_CUBIC) takes
    the image to the canvas, a pure whole-pixel shift when upscale is 8; where
    the image lands smaller than it is, it is low-passed first so it does not
    alias. `weight` (0 to 1) scales the mask: a video face fading in or out. Pixels the mask does not
    reach keep the canvas exactly. Returns the placed mask (float32 [H, W]).
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
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0) * np.float32(weight)
    warped = cv2.warpAffine(image, to_out - shift, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    base = canvas[y0:y1, x0:x1]
    blend = to_uint8(base * (1 - m[..., None]) + warped * m[..., None])
    canvas[y0:y1, x0:x1] = np.where(m[..., None] > 0, blend, base)
    placed[y0:y1, x0:x1] = m
    return placed
