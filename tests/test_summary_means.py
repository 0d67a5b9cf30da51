"""test.py's means: an image whose metric is inf or NaN is left out of the mean, counted and reported."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT

FACE = os.path.join(ROOT, "datasets", "test", sorted(os.listdir(os.path.join(ROOT, "datasets", "test")))[0])


@pytest.mark.slow
def test_an_inf_psnr_is_counted_and_reported_not_dropped_silently(tmp_path, random_weights):
    # a flat image survives x8 down and bicubic up unchanged: its bicubic PSNR is inf
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "flat.png"), np.full((128, 128, 3), 128, np.uint8))
    shutil.copy(FACE, images / "face.jpg")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--test_path", str(images),
                             "--weight_path", str(random_weights), "--image_save_path", str(out), "--num_figures", "0",
                             "--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net", "--no_brisque"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "metrics.csv", newline="") as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    assert math.isinf(float(rows["flat"]["bicubic_psnr"])) and math.isfinite(float(rows["face"]["bicubic_psnr"]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["left_out_of_means"] == {"bicubic_psnr": 1}
    # the mean is the other image's value, and the whole summary says how many were left out
    # metrics.csv rounds to 6 decimals
    assert summary["bicubic_psnr"] == pytest.approx(float(rows["face"]["bicubic_psnr"]), abs=1e-6)
    assert summary["psnr"] == pytest.approx(sum(float(r["psnr"]) for r in rows.values()) / 2, abs=1e-6)
    assert "left out of the means as inf/NaN: bicubic_psnr 1" in result.stdout.strip().splitlines()[-1]


def test_every_report_is_strict_json_with_nan_and_inf_as_null_at_any_depth(tmp_path):
    """The one writer of summary.json, for the face and the photo modes alike."""
    from evaluation.report import SUMMARY, write_summary

    summary = {"psnr": math.inf, "images": 3, "intervals": {"psnr": {"low": math.nan, "high": 24.5}},
               "photos_report": {"a.png": {"faces": [{"box": [1.0, -math.inf], "status": "s"}]}}}
    written = write_summary(str(tmp_path), summary)
    text = (tmp_path / SUMMARY).read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    expected = {"psnr": None, "images": 3, "intervals": {"psnr": {"low": None, "high": 24.5}},
                "photos_report": {"a.png": {"faces": [{"box": [1.0, None], "status": "s"}]}}}
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {SUMMARY}")) == expected
    assert written == expected
    assert summary["psnr"] == math.inf  # the caller's dict is left as it was


def test_photo_mode_writes_its_report_through_the_one_writer(tmp_path, monkeypatch):
    """test.py --real_world's summary.json follows the face mode's rules: a NaN from the pipeline is null."""
    from types import SimpleNamespace

    from evaluation import photos
    from faces import photo as ph

    def nan_face_photo(photo, predict, **_options):
        face = {"box": [0.0, 0.0, 8.0, 8.0], "frame_px": math.nan, "confidence": 0.9, "status": ph.SUPER_RESOLVED}
        return ph.PhotoResult(composed=np.zeros((16, 16, 3), np.uint8), faces=[face], lr={}, sr={}, matrices=[],
                              upscale=2, seconds={"detect": 0.0, "generator": 0.0, "total": 0.0})

    monkeypatch.setattr(photos.ph, "super_resolve_photo", nan_face_photo)
    monkeypatch.setattr(photos, "write_photo_outputs", lambda *args: None)
    opt = SimpleNamespace(test_path=str(tmp_path), upscale=2, min_face=0, force_large=False, raw_output=False,
                          match_sigma=None, weight_path="w")
    model = SimpleNamespace(predict=None, name="keras", precision="float32")
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    summary = photos.run_photos(opt, [str(image)], model, str(tmp_path), False, {str(image): "p"})
    saved = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert saved["photos_report"]["p.png"]["faces"][0]["frame_px"] is None and saved == summary
    assert (saved["photos"], saved["faces"], saved["super_resolved"]) == (1, 1, 1)
