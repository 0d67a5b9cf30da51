"""Faces in ordinary photos: detect, align to the training framing, super-resolve, paste back.

The generator only knows one framing: an aligned CelebA image (178x218),
centre-cropped to 178x178 and resized to 128x128, then made 16x16 by
`data.degradation.degrade`. For a photo this module

1. finds faces and their 5 landmarks with MTCNN (the `mtcnn` package),
2. warps each face by the similarity transform that puts its landmarks on
   `TEMPLATE_128` (the mean landmarks of that framing) -> a 128x128 crop,
3. makes the 16x16 input from the crop with `degrade` (the training LR), so a
   face whose frame spans more than 16 photo pixels is downscaled to 16 px,
4. super-resolves the inputs with a caller-given `predict`,
5. pastes each SR face back, with a feathered mask, into the photo upscaled
   by `upscale` with bicubic interpolation; outside the masks the result *is*
   that bicubic upscaling.

Coordinates: pixel centres at integer positions, as `cv2.warpAffine` uses
them. `cv2.resize` by an integer factor u maps x -> u * x + (u - 1) / 2.
"""
import dataclasses
import math
import os

import cv2
import numpy as np

FRAME = 128          # side of the aligned face (the HR training frame)
SCALE = 8            # the generator's factor: FRAME // SCALE = 16 px input
CELEBA_SIZE = (218, 178)   # aligned CelebA image (height, width)
CELEBA_CROP = 178          # the paper's centre crop, top row (218 - 178) // 2 = 20
MAX_OUTPUT_PIXELS = 100_000_000   # composed photos above this are refused
DETECTOR_MIN_FACE = 20     # MTCNN's own default smallest face box (pixels)
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


@dataclasses.dataclass
class RealWorldResult:
    """Everything `super_resolve_photo` made for one photo (faces ordered left to right)."""
    faces: list
    matrices: list        # 2x3 float64, photo -> aligned frame, one per face
    aligned: list         # uint8 [128, 128, 3] aligned crops of the photo
    lr: list              # uint8 [16, 16, 3] generator inputs
    sr: list              # uint8 [128, 128, 3] generator outputs
    composed: np.ndarray  # uint8 [H * upscale, W * upscale, 3]
    upscale: int
    min_face: float
    skipped_small: int    # faces found but smaller than min_face

    @property
    def frame_sizes(self):
        """Side of each face's aligned frame in photo pixels (> 16: downscaled for the model)."""
        return [FRAME / matrix_scale(m) for m in self.matrices]

    def report(self, name="photo"):
        """One line for the console."""
        if not self.faces and not self.skipped_small:
            return f"{name}: no face found"
        line = f"{name}: {len(self.faces)} face{'s' if len(self.faces) != 1 else ''}"
        if self.skipped_small:
            line += f", {self.skipped_small} skipped (smaller than --min_face {self.min_face:g} px)"
        return line


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
    from data.images import list_images, read_image

    paths = [p for p in list_images(celeba_dir)]
    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in rng.choice(len(paths), min(count, len(paths)), replace=False)]
    points = []
    for path in chosen:
        image = read_image(path)
        if image.shape[:2] != CELEBA_SIZE:
            continue
        faces, _ = detect_faces(image, min_face=0, detector=detector)
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

_DETECTOR = None


def default_detector():
    """One shared MTCNN (weights ship with the package), on the GPU when there is one."""
    global _DETECTOR
    if _DETECTOR is None:
        import tensorflow as tf
        from mtcnn import MTCNN

        device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
        _DETECTOR = MTCNN(device=device)
    return _DETECTOR


def detect_faces(photo, min_face=DETECTOR_MIN_FACE, detector=None):
    """(faces, skipped) for a uint8 RGB photo [H, W, 3].

    faces: `Face`s whose box is at least `min_face` px on its longer side,
    ordered left to right; skipped: how many smaller faces were found. MTCNN
    does not look for faces under min(DETECTOR_MIN_FACE, min_face) px (12 at
    least), so smaller ones are neither returned nor counted.
    """
    photo = _check_photo(photo)
    detector = detector or default_detector()
    pyramid_min = max(12, min(DETECTOR_MIN_FACE, int(min_face)))
    rows = detector.detect_faces(photo, output_type="numpy", box_format="xyxy",
                                 min_face_size=pyramid_min)
    rows = np.asarray(rows, np.float64).reshape(-1, 16)
    faces = []
    for row in rows:
        # numpy layout of mtcnn 1.0: [image, x1, y1, x2, y2, confidence, x1..x5, y1..y5]
        landmarks = np.stack([row[6:11], row[11:16]], axis=1)
        faces.append(Face(box=row[1:5].copy(), landmarks=landmarks, confidence=float(row[5])))
    kept = [f for f in faces if f.size >= min_face]
    kept.sort(key=lambda f: (f.box[0] + f.box[2], f.box[1] + f.box[3]))
    return kept, len(faces) - len(kept)


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


def align(photo, landmarks, size=FRAME):
    """(aligned uint8 [size, size, 3], 2x3 matrix photo -> aligned) for one face.

    The eyes and mouth centre go onto those of TEMPLATE_128 (scaled to
    `size`) by a least-squares similarity. A face larger than the frame is first shrunk with INTER_AREA
    (no aliasing), a smaller one is enlarged with INTER_LINEAR; pixels beyond
    the photo's edge repeat the edge.
    """
    photo = _check_photo(photo)
    template = TEMPLATE_128 * (size / FRAME) + (size / FRAME - 1) / 2
    matrix = similarity_matrix(alignment_points(landmarks), alignment_points(template))
    source, to_source = photo, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    shrink = matrix_scale(matrix)
    if shrink < 0.75:
        # The part of the photo the frame covers, shrunk to about frame resolution first.
        corners = frame_corners(matrix, size)
        margin = 4.0 / shrink
        x0, y0 = np.floor(corners.min(0) - margin).astype(int)
        x1, y1 = np.ceil(corners.max(0) + margin).astype(int)
        h, w = photo.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            new_w = max(1, int(round((x1 - x0) * shrink)))
            new_h = max(1, int(round((y1 - y0) * shrink)))
            source = cv2.resize(photo[y0:y1, x0:x1], (new_w, new_h), interpolation=cv2.INTER_AREA)
            fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
            # photo (x, y) -> shrunk region ((x - x0 + 0.5) * fx - 0.5, ...)
            to_source = np.array([[fx, 0, (0.5 - x0) * fx - 0.5], [0, fy, (0.5 - y0) * fy - 0.5]])
    warp = chain(matrix, invert(to_source))
    aligned = cv2.warpAffine(source, warp, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return aligned, matrix


def make_lr(aligned):
    """The generator input of aligned uint8 crops ([N,] S, S, 3): training's 3 x 2x bilinear steps."""
    from data.degradation import degrade

    return np.asarray(degrade(np.asarray(aligned, np.float32))).astype(np.uint8)


# ----------------------------------------------------------------- composing

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


def output_matrix(matrix, upscale, size=FRAME):
    """2x3 map aligned frame -> composed (upscaled) photo for a photo -> aligned `matrix`."""
    up = np.array([[upscale, 0, (upscale - 1) / 2], [0, upscale, (upscale - 1) / 2]], np.float64)
    return chain(up, invert(matrix))


def feather_mask(size=FRAME, border=None):
    """float32 [size, size] blend weights: 1 inside, a soft edge, exactly 0 on the outer pixel ring.

    The ones mask is eroded by `border` px (default size // 10) and blurred
    with a Gaussian whose kernel reaches no further than the erosion.
    """
    border = max(2, size // 10 if border is None else int(border))
    mask = np.zeros((size, size), np.float32)
    mask[border:size - border, border:size - border] = 1.0
    radius = border - 1
    mask = cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), sigmaX=radius / 2.0,
                            borderType=cv2.BORDER_CONSTANT)
    mask[[0, -1], :] = 0.0
    mask[:, [0, -1]] = 0.0
    return mask


def compose(photo, sr_faces, matrices, upscale, return_mask=False, max_pixels=MAX_OUTPUT_PIXELS):
    """The photo upscaled x`upscale` (bicubic) with each SR face pasted back.

    sr_faces: uint8 or float [S, S, 3] faces in the aligned frame; matrices:
    their photo -> aligned 2x3 maps (from `align`). Each face is warped back
    (INTER_CUBIC) and blended with `feather_mask` warped the same way
    (INTER_LINEAR); pixels where every mask is 0 equal the bicubic upscaling
    exactly. Returns uint8 [H*u, W*u, 3], and the float32 [H*u, W*u] union
    of the masks when `return_mask`.
    """
    photo = _check_photo(photo)
    h, w = photo.shape[:2]
    out_h, out_w = check_output_size(h, w, upscale, max_pixels)
    upscale = int(upscale)
    composed = cv2.resize(photo, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    union = np.zeros((out_h, out_w), np.float32) if return_mask else None
    for face, matrix in zip(sr_faces, matrices):
        face = np.clip(np.round(np.asarray(face, np.float32)), 0, 255)
        size = face.shape[0]
        to_out = output_matrix(matrix, upscale, size)
        corners = np.array([[-1, -1], [size, -1], [size, size], [-1, size]], np.float64)
        mapped = corners @ to_out[:, :2].T + to_out[:, 2]
        x0, y0 = np.maximum(np.floor(mapped.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(mapped.max(0)).astype(int) + 2, [out_w, out_h])
        if x1 <= x0 or y1 <= y0:
            continue
        roi = to_out.copy()
        roi[:, 2] -= (x0, y0)
        mask = cv2.warpAffine(feather_mask(size), roi, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        warped = cv2.warpAffine(face, roi, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REPLICATE)
        base = composed[y0:y1, x0:x1]
        m = mask[..., None]
        blend = np.clip(np.round(base.astype(np.float32) * (1 - m) + warped * m), 0, 255).astype(np.uint8)
        composed[y0:y1, x0:x1] = np.where(m > 0, blend, base)
        if union is not None:
            union[y0:y1, x0:x1] = np.maximum(union[y0:y1, x0:x1], mask)
    return (composed, union) if return_mask else composed


# ----------------------------------------------------------------- whole photo

def _run_predict(predict, lr):
    """float32 [N, 128, 128, 3] from predict(lr float32 [N, 16, 16, 3]); a tuple output's first item."""
    out = predict(lr.astype(np.float32))
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = np.asarray(out, np.float32)
    expected = (lr.shape[0], lr.shape[1] * SCALE, lr.shape[2] * SCALE, 3)
    if out.shape != expected:
        raise ValueError(f"predict returned shape {out.shape}, expected {expected}")
    return out


def super_resolve_photo(photo, predict, upscale=SCALE, min_face=DETECTOR_MIN_FACE, detector=None,
                        max_pixels=MAX_OUTPUT_PIXELS, batch_size=16):
    """Detect, align, super-resolve and paste back every face of a uint8 RGB photo.

    predict(lr float32 [N, 16, 16, 3] on [0, 255]) -> float [N, 128, 128, 3]
    (or a tuple whose first item is that: the generator's outputs). The size
    check runs before anything else: a too-large request raises
    PhotoTooLargeError. A photo without faces gives a result with no faces
    whose composed photo is the bicubic upscaling.
    """
    photo = _check_photo(photo)
    check_output_size(photo.shape[0], photo.shape[1], upscale, max_pixels)
    faces, skipped = detect_faces(photo, min_face, detector)
    aligned, matrices = [], []
    for face in faces:
        crop, matrix = align(photo, face.landmarks)
        aligned.append(crop)
        matrices.append(matrix)
    lr, sr = [], []
    if faces:
        lr_batch = make_lr(np.stack(aligned))
        for start in range(0, len(faces), batch_size):
            out = _run_predict(predict, lr_batch[start:start + batch_size])
            sr.extend(np.clip(np.round(out), 0, 255).astype(np.uint8))
        lr = list(lr_batch)
    composed = compose(photo, sr, matrices, upscale, max_pixels=max_pixels)
    return RealWorldResult(faces=faces, matrices=matrices, aligned=aligned, lr=lr, sr=sr,
                           composed=composed, upscale=int(upscale), min_face=float(min_face),
                           skipped_small=skipped)


def write_outputs(result, photo, out_dir, stem, figure=True):
    """Write <stem>_SR.png, <stem>_faces/<k>_SR.png (+ <k>_LR.png, the input shown bicubic)
    and <stem>_before_after.png into out_dir; returns the written paths. k counts from 0,
    faces left to right."""
    from utils import write_png

    written = []
    path = os.path.join(out_dir, stem + "_SR.png")
    write_png(path, result.composed)
    written.append(path)
    if result.faces:
        face_dir = os.path.join(out_dir, stem + "_faces")
        for k, (lr, sr) in enumerate(zip(result.lr, result.sr)):
            for name, image in ((f"{k}_SR.png", sr),
                                (f"{k}_LR.png", cv2.resize(lr, sr.shape[1::-1], interpolation=cv2.INTER_CUBIC))):
                write_png(os.path.join(face_dir, name), image)
                written.append(os.path.join(face_dir, name))
    if figure:
        path = os.path.join(out_dir, stem + "_before_after.png")
        before_after_figure(photo, result.composed, path, faces=list(zip(result.lr, result.sr)))
        written.append(path)
    return written


def before_after_figure(photo, composed, path, faces=(), max_side=1200, max_faces=6, title=None):
    """Input photo | composed output side by side (both shown at one size), and below
    the first `max_faces` faces as 16x16 input | SR pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = composed.shape[:2]
    shrink = min(1.0, max_side / max(h, w))
    show_w, show_h = max(1, int(round(w * shrink))), max(1, int(round(h * shrink)))
    after = cv2.resize(composed, (show_w, show_h), interpolation=cv2.INTER_AREA) if shrink < 1 else composed
    before = cv2.resize(photo, (show_w, show_h), interpolation=cv2.INTER_NEAREST)
    faces = list(faces)[:max_faces]
    rows = 2 if faces else 1
    cols = max(2, 2 * len(faces))
    fig = plt.figure(figsize=(10, 5 * show_h / show_w + (2.2 if faces else 0) + 0.6))
    grid = fig.add_gridspec(rows, cols, height_ratios=[5 * show_h / show_w, 2.0][:rows])
    half = cols // 2
    for i, (image, label) in enumerate(((before, f"input {photo.shape[1]}x{photo.shape[0]}"),
                                        (after, f"output x{w // photo.shape[1]} ({w}x{h})"))):
        ax = fig.add_subplot(grid[0, i * half:(i + 1) * half])
        ax.imshow(image, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    for k, (lr, sr) in enumerate(faces):
        for j, (image, label) in enumerate(((lr, f"{k}: 16x16 input"), (sr, f"{k}: SR"))):
            ax = fig.add_subplot(grid[1, 2 * k + j])
            ax.imshow(image, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _check_photo(photo):
    photo = np.asarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB photo [H, W, 3], got {photo.dtype} {photo.shape}")
    return np.ascontiguousarray(photo)
