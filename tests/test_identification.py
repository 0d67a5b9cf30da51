"""Rank-1 identification (metrics.identification) and test.py's rank-1 on faces arranged into identity folders."""
import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from test_cli_test import ROOT, STEMS, TEST_IMAGES, generator, read_rgb, released_hr, run_test_py  # noqa: F401

from metrics.identification import identifiable, per_face, rank1, summary


def brute_force_rank1(probes, gallery, labels):
    hits = 0
    for i, p in enumerate(probes):
        if np.isnan(p).any():
            continue
        best, best_label = np.inf, None
        for j, g in enumerate(gallery):
            if j == i or np.isnan(g).any():
                continue
            d = np.sqrt(np.sum((p - g) ** 2))
            if d < best:
                best, best_label = d, labels[j]
        hits += best_label == labels[i]
    return 100.0 * hits / len(labels)


@pytest.mark.parametrize("seed", range(5))
def test_rank1_matches_brute_force_with_missing_faces(seed):
    rng = np.random.default_rng(seed)
    n = 30
    labels = rng.integers(0, 5, n).astype(str)
    centres = rng.normal(size=(5, 8))
    gallery = centres[labels.astype(int)] + rng.normal(0, 0.8, (n, 8))
    probes = gallery + rng.normal(0, 0.5, (n, 8))
    gallery[rng.random(n) < 0.15] = np.nan
    probes[rng.random(n) < 0.15] = np.nan
    got = rank1(probes, gallery, labels)
    assert got == pytest.approx(brute_force_rank1(probes, gallery, labels))
    assert 0 < got < 100


def test_rank1_excludes_the_probe_itself_and_counts_misses():
    labels = ["a", "a", "b", "b"]
    gallery = np.array([[0.0], [1.0], [10.0], [11.0]])
    assert rank1(gallery, gallery, labels) == 100.0  # without the exclusion, trivially 100 too
    probes = np.array([[10.4], [1.0], [np.nan], [0.0]])
    # 0: nearest others 10 (b) -> miss; 1: nearest 0 (a) -> hit; 2: no descriptor -> miss; 3: 0 (a) -> miss
    assert rank1(probes, gallery, labels) == 25.0
    lonely = np.array([[0.0], [np.nan], [np.nan], [np.nan]])
    assert rank1(lonely, lonely, labels) == 0.0  # nothing else to match against
    with pytest.raises(ValueError, match="labels"):
        rank1(probes[:3], gallery, labels)


def test_identifiable_and_summary_keys():
    assert identifiable(["a", "a", "b"]) and not identifiable(["a", "a"]) and not identifiable(["a", "b", "c"])
    rows = [{"desc_algo": np.array([0.0, 0.0]), "bicubic_desc_algo": None, "hr_desc_algo": np.array([0.0, 0.1])},
            {"desc_algo": np.array([5.0, 5.0]), "bicubic_desc_algo": None, "hr_desc_algo": np.array([0.1, 0.0])},
            {"desc_algo": np.array([0.0, 0.3]), "bicubic_desc_algo": None, "hr_desc_algo": np.array([5.0, 5.0])}]
    s = summary(per_face(rows, ["x", "x", "y"], dim=2), ["x", "x", "y"])
    assert s == {"rank1": pytest.approx(100 / 3), "bicubic_rank1": 0.0, "hr_rank1": pytest.approx(200 / 3),
                 "identities": 2}


def dlib_descriptor(image, box):
    """dlib's 5-point shape and ResNet descriptor, called here directly (face_recognition's recipe)."""
    import dlib

    from metrics.face import model_path

    top, bottom, left, right = box
    rect = dlib.rectangle(int(left), int(top), int(right), int(bottom))
    shape = dlib.shape_predictor(model_path("shape_5"))(image, rect)
    encoder = dlib.face_recognition_model_v1(model_path("encoder"))
    return np.asarray(encoder.compute_face_descriptor(image, shape, 1))


def dlib_box(hr):
    import dlib

    rects = dlib.get_frontal_face_detector()(hr, 1)
    if not len(rects):
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    return max(r.top(), 0), min(r.bottom(), hr.shape[0]), max(r.left(), 0), min(r.right(), hr.shape[1])


@pytest.mark.slow
def test_test_py_rank1_on_identity_folders(generator, tmp_path, dlib_models):  # noqa: F811
    """Four people, each a face and its mirror image: SR, bicubic and HR rank-1 match a brute force over
    dlib descriptors of the written images; an identities file overrides the folders."""
    src = tmp_path / "people"
    stems = STEMS[:4]
    for k, stem in enumerate(stems):
        person = src / f"person_{k}"
        person.mkdir(parents=True)
        shutil.copy(os.path.join(TEST_IMAGES, stem + ".jpg"), person / "a.jpg")
        image = cv2.imread(os.path.join(TEST_IMAGES, stem + ".jpg"))
        cv2.imwrite(str(person / "b.png"), image[:, ::-1])
    out = tmp_path / "out"
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", src, "--image_save_path", out,
                         "--no_fr", "--no_vif", "--no_tar_net", "--no_brisque", "--num_figures", 0)
    assert result.returncode == 0, result.stderr
    summary_ = json.loads((out / "summary.json").read_text())
    assert summary_["identities"] == 4
    assert "rank-1" in result.stdout

    labels, desc = [], {"": [], "bicubic_": [], "hr_": []}
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:
        names = [r["name"] for r in csv.DictReader(f)]
    for name in names:
        path = next(p for p in (src / (name + ext) for ext in (".jpg", ".png")) if p.exists())
        hr = released_hr(path)
        box = dlib_box(hr)
        labels.append(name.split("/")[0])
        for prefix, image in (("", read_rgb(out / (name + "_SR.png"))),
                              ("bicubic_", read_rgb(out / (name + "_LR.png"))), ("hr_", hr)):
            desc[prefix].append(np.full(128, np.nan) if box is None else dlib_descriptor(image, box))
    for prefix in desc:
        expected = brute_force_rank1(np.array(desc[prefix]), np.array(desc["hr_"]), labels)
        assert summary_[prefix + "rank1"] == pytest.approx(expected, abs=1e-9), prefix
    assert summary_["hr_rank1"] >= 50  # most mirror images are found as the same person
    # metrics.csv: each face's person and hits, which the intervals resample by person
    with open(out / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["identity"] for r in rows] == labels
    for prefix in desc:
        assert 100 * np.mean([int(r[prefix + "rank1_hit"]) for r in rows]) == pytest.approx(summary_[prefix + "rank1"])
    intervals = summary_["intervals"]
    assert (intervals["resampled"], intervals["people"], intervals["faces"]) == ("people", 4, 8)
    gain = intervals["sr_minus_bicubic"]["rank1"]["mean"]
    assert gain == pytest.approx(summary_["rank1"] - summary_["bicubic_rank1"])
    low, high = intervals["means"]["psnr"]
    assert low < summary_["psnr"] < high
    assert "intervals, bootstrap over 4 people" in result.stdout

    # an identities file that makes everyone one person: rank-1 is off, with a warning naming the file
    listing = src / "identities.txt"
    listing.write_text("".join(f"person_{k}/{f} everyone\n" for k in range(len(stems)) for f in ("a.jpg", "b.png")))
    result = run_test_py("--weight_path", generator.weights_folder, "--test_path", src, "--image_save_path",
                         tmp_path / "out2", "--identities", listing,
                         "--no_fr", "--no_vif", "--no_tar_net", "--no_brisque", "--num_figures", 0)
    assert result.returncode == 0, result.stderr
    assert "rank-1 identification off" in result.stderr and str(listing) in result.stderr
    assert "rank1" not in json.loads((tmp_path / "out2" / "summary.json").read_text())
