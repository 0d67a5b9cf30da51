"""faces.jpeg: a photo's JPEG quality read from its pixels, and the correction the real-photo path chooses
with it. The photos are the bundled sample faces, tiled and shrunk; the JPEGs are OpenCV's and Pillow's."""
import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image
from test_real_world import TrueDetector, bicubic_predict, small_faces_photo

from conftest import ROOT
from data.constants import COMPRESSED_MATCH_SIGMA
from data.images import list_images, read_image
from faces import jpeg, photo as ph

SAMPLES = os.path.join(ROOT, "datasets", "test")


def group(shrink):
    faces = [read_image(p) for p in list_images(SAMPLES)]
    tiled = np.concatenate([np.concatenate(faces[:4], axis=1), np.concatenate(faces[4:8], axis=1)], axis=0)
    h, w = tiled.shape[0] // shrink, tiled.shape[1] // shrink
    return cv2.resize(tiled[:h * shrink, :w * shrink], (w, h), interpolation=cv2.INTER_AREA)


def opencv_jpeg(image, quality):
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def pillow_jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    decoded = Image.open(buffer)
    return np.asarray(decoded.convert("RGB")), np.array(decoded.quantization[0], np.float64).reshape(8, 8)


@pytest.mark.parametrize("quality", [5, 25, 50, 75, 90, 97])
def test_quality_table_is_the_one_libjpeg_writes(quality):
    _, written = pillow_jpeg(np.zeros((16, 16, 3), np.uint8), quality)
    np.testing.assert_array_equal(jpeg.quality_table(quality), written)


@pytest.mark.parametrize("shrink", [4, 8, 11])
def test_the_estimate_finds_the_table_of_a_compressed_photo_and_none_in_a_clean_one(shrink):
    photo = group(shrink)
    assert jpeg.estimate_quality(photo) is None
    noisy = np.clip(photo + np.random.default_rng(1).normal(0, 5, photo.shape), 0, 255).astype(np.uint8)
    assert jpeg.estimate_quality(noisy) is None
    for quality in (10, 30, 50, 75, 90, 95):
        for decoded in (opencv_jpeg(photo, quality), pillow_jpeg(photo, quality)[0]):
            found = jpeg.estimate_quality(decoded)
            assert found is not None and abs(found - quality) <= 1, (quality, found)   # a neighbour's table may fit


def test_the_real_photo_path_smooths_the_correction_of_a_compressed_photo_only():
    photo, truths = small_faces_photo()
    detector = TrueDetector(photo.shape[1], truths)
    compressed = opencv_jpeg(photo, 60)
    results = {name: ph.super_resolve_photo(image, bicubic_predict, upscale=4, detector=detector, force_large=True)
               for name, image in (("clean", photo), ("jpeg", compressed))}
    assert results["clean"].jpeg_quality is None and results["clean"].match_sigma == 0
    assert abs(results["jpeg"].jpeg_quality - 60) <= 2 and results["jpeg"].match_sigma == COMPRESSED_MATCH_SIGMA
    assert all(face["jpeg_quality"] == results["jpeg"].jpeg_quality for face in results["jpeg"].faces)
    assert "JPEG quality about" in results["jpeg"].report() and "JPEG" not in results["clean"].report()
    forced = ph.super_resolve_photo(compressed, bicubic_predict, upscale=4, detector=detector, force_large=True,
                                    match_sigma=0.0)
    smooth, full = results["jpeg"], forced
    k = sorted(smooth.sr)[0]
    # the full correction puts the input's 8x8 block pattern back; the smoothed one leaves less of it
    def input_scale_detail(image, lr):
        means = cv2.resize(image.astype(np.float32), lr.shape[1::-1], interpolation=cv2.INTER_AREA)
        return np.abs(means - cv2.GaussianBlur(means, (0, 0), 1.0)).mean()
    assert input_scale_detail(smooth.sr[k], smooth.lr[k]) < input_scale_detail(full.sr[k], full.lr[k])


def test_faces_of_a_photo_compressed_below_the_limit_stay_bicubic():
    photo, truths = small_faces_photo(seed=1)
    detector = TrueDetector(photo.shape[1], truths)
    cases = ((ph.MIN_JPEG_QUALITY - 10, ph.TOO_COMPRESSED), (ph.MIN_JPEG_QUALITY + 5, ph.SUPER_RESOLVED))
    for quality, expected in cases:
        compressed = opencv_jpeg(photo, quality)
        result = ph.super_resolve_photo(compressed, bicubic_predict, upscale=3, detector=detector, force_large=True)
        assert [face["status"] for face in result.faces] == [expected] * len(truths), quality
        h, w = compressed.shape[:2]
        plain = cv2.resize(compressed, (w * 3, h * 3), interpolation=cv2.INTER_CUBIC)
        assert np.array_equal(result.composed, plain) == (expected == ph.TOO_COMPRESSED)
    assert f"{len(truths)} {ph.TOO_COMPRESSED} (JPEG quality about" in ph.super_resolve_photo(
        opencv_jpeg(photo, ph.MIN_JPEG_QUALITY - 10), bicubic_predict, upscale=3, detector=detector).report()
