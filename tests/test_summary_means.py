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
