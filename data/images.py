"""Finding and reading image files, and the HR framing shared by test and train."""
import os

import cv2
import numpy as np

from data.constants import CELEBA_CROP, DATASET_MODES, SHARD_SUFFIX, VGGFACE2_CROP

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageReadError(ValueError):
    """A file that cannot be decoded as an image; the message says why."""


def list_images(root, extensions=IMAGE_EXTENSIONS):
    """Image files (names ending in `extensions`) under `root`, recursively, sorted; extensions in any case.

    Symlinked folders are followed (a dataset is often a folder of links),
    each real folder once, so a symlink loop cannot hang the scan.
    """
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        for name in files:
            if name.lower().endswith(extensions):
                found.append(os.path.join(folder, name))
    return sorted(found)


def is_local(path):
    """A path on the local filesystem rather than one with a scheme tf.io.gfile reads (gs://, ram://)."""
    return "://" not in path


def is_shard_path(path):
    """A training path naming TFRecord shards (one, or a glob of them) rather than a folder."""
    return path.endswith(SHARD_SUFFIX) or any(c in os.path.basename(path) for c in "*?[")


def read_image(path):
    """uint8 RGB array [H, W, 3]: alpha dropped, gray expanded, 16-bit scaled."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageReadError(f"cannot open: {err.strerror or err}") from err
    return decode_image(raw)


def decode_image(raw):
    """`read_image` of an encoded file's bytes (bytes or a uint8 array)."""
    raw = np.frombuffer(raw, np.uint8) if isinstance(raw, bytes) else raw
    if raw.size == 0:
        raise ImageReadError("empty file")
    # Not IMREAD_UNCHANGED: that one ignores the EXIF orientation which the
    # released code's cv2.imread applied; these flags keep 16-bit depth, drop
    # alpha and turn CMYK into BGR.
    image = cv2.imdecode(raw, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ImageReadError("not a decodable image")
    return to_rgb8(image)


def to_rgb8(image):
    """OpenCV-decoded array (BGR/BGRA/gray, 8 or 16 bit) -> uint8 RGB."""
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageReadError(f"unsupported sample type {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        image = image[:, :, :3]
    elif channels != 3:
        raise ImageReadError(f"unsupported channel count {channels}")
    return np.ascontiguousarray(image[:, :, ::-1])


def face_crop_box(height, width, mode="folder"):
    """(top, left, size) of the square face crop for a dataset mode.

    folder: the largest centred square (for an aligned 178x218 CelebA frame
    this is the paper's 178x178 crop); celeba: the paper's 178x178 centre crop
    (smaller frames fall back to the largest centred square); vggface2:
    0.7 x min(h, w), centred, as the paper says.
    """
    if mode not in DATASET_MODES:
        raise ValueError(f"unknown dataset mode {mode!r}; expected one of {', '.join(DATASET_MODES)}")
    side = min(height, width)
    if mode == "celeba":
        side = min(side, CELEBA_CROP)
    elif mode == "vggface2":
        side = max(1, int(round(VGGFACE2_CROP * side)))
    return (height - side) // 2, (width - side) // 2, side


def prepare_hr(image, load_size=128, crop_size=128, mode="folder"):
    """Test-time HR face: square crop -> load_size (INTER_LINEAR) -> centre crop_size."""
    top, left, side = face_crop_box(image.shape[0], image.shape[1], mode)
    face = image[top:top + side, left:left + side]
    if side != load_size:
        face = cv2.resize(face, (load_size, load_size), interpolation=cv2.INTER_LINEAR)
    offset = (load_size - crop_size) // 2
    return face[offset:offset + crop_size, offset:offset + crop_size]


def prepare_lr(image, lr_size):
    """An LR face given as input: kept as is when already lr_size x lr_size."""
    if image.shape[:2] == (lr_size, lr_size):
        return image
    top, left, side = face_crop_box(image.shape[0], image.shape[1], "folder")
    square = image[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > lr_size else cv2.INTER_LINEAR
    return cv2.resize(square, (lr_size, lr_size), interpolation=interpolation)


def upscale_bicubic(image, scale):
    h, w = image.shape[:2]
    return cv2.resize(image, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
