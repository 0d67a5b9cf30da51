"""scripts.prepare_faces on photos made here from the repository's sample faces, at known places and sizes."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

from conftest import ROOT
from data.images import read_image
from utils import write_png

SAMPLES = os.path.join(ROOT, "datasets", "test")
SHARP, OTHER, SMALL = "002993", "011527", "023497"   # sample faces of three people


def sample(stem):
    return read_image(os.path.join(SAMPLES, stem + ".jpg"))


def make_photos(folder):
    """Ordinary photos of whole 178x218 CelebA images pasted onto noise, in a folder per person.

    Returns {each face file that should be written: the sample it shows}.
    """
    rng = np.random.default_rng(0)

    def photo(h, w, *placed):
        canvas = np.clip(rng.normal(120, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        for image, x, y, scale in placed:
            image = cv2.resize(image, None, fx=scale, fy=scale,
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
        return canvas

    a, b, c = sample(SHARP), sample(OTHER), sample(SMALL)
    # frames of about 178, 214 and 89 photo px, left to right: the last is too small for the 128 frame
    write_png(os.path.join(folder, "anna", "group.png"), photo(300, 620, (a, 10, 20, 1.0), (b, 220, 10, 1.2),
                                                               (c, 500, 60, 0.5)))
    # the same face upsampled 3x (a frame of 59 px of detail drawn over 178), then sharp
    blurred = cv2.resize(cv2.resize(c, (59, 72), interpolation=cv2.INTER_AREA), (178, 218),
                         interpolation=cv2.INTER_CUBIC)
    write_png(os.path.join(folder, "ben", "pair.png"), photo(260, 420, (blurred, 20, 20, 1.0), (c, 220, 20, 1.0)))
    # a re-encoded, resized copy of anna's first face: a near-duplicate
    ok, jpeg = cv2.imencode(".jpg", photo(260, 220, (a, 20, 20, 0.9))[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    jpeg.tofile(os.path.join(folder, "ben", "copy.jpg"))
    with open(os.path.join(folder, "ben", "broken.jpg"), "wb") as f:
        f.write(b"not a photo")
    return {"anna/group_0.png": SHARP, "anna/group_1.png": OTHER, "ben/pair_1.png": SMALL}


def psnr(x, y):
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def log_lines(out):
    with open(os.path.join(out, "prepare_faces.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_faces_written_aligned_and_skipped_with_reasons_then_a_rerun_resumes(tmp_path, capsys):
    from faces import align, detect, paste
    from scripts.prepare_faces import main

    photos, out = str(tmp_path / "photos"), str(tmp_path / "faces")
    expected = make_photos(photos)
    report = main([photos, out, "--workers", "1"])
    assert report["faces"] == {"written": 3, "too_small": 1, "too_blurred": 1, "duplicate": 1}
    assert list(report["unreadable"]) == ["ben/broken"]
    assert "ben/broken.jpg: not a decodable image" in capsys.readouterr().out
    with open(os.path.join(out, "prepare_faces_report.json"), encoding="utf-8") as f:
        assert json.load(f) == report
    written = sorted(os.path.relpath(os.path.join(d, n), out).replace(os.sep, "/")
                     for d, _, names in os.walk(out) for n in names if n.endswith(".png"))
    assert written == sorted(expected)
    by_photo = {r["photo"]: [f["status"] for f in r["faces"]] for r in log_lines(out)}
    assert by_photo == {"anna/group": ["written", "written", "too_small"], "ben/broken": [],
                        "ben/copy": ["duplicate"], "ben/pair": ["too_blurred", "written"]}

    # each face framed as the real-photo path frames the same CelebA image on its own (within a 2 px
    # shift: the detector's landmarks move that much between contexts), its eyes and mouth on the template
    references = {}
    for stem in (SHARP, OTHER, SMALL):
        best = max(detect.detect_faces(sample(stem)), key=lambda f: f.confidence)
        references[stem] = align.face_in_frame(sample(stem), align.frame_matrix(best.landmarks))
    face_region = paste.face_mask() >= 0.5
    for name, stem in expected.items():
        face = read_image(os.path.join(out, name))
        assert face.shape == (128, 128, 3)
        scores = {s: psnr(face[face_region], ref[face_region]) for s, ref in references.items()}
        assert scores[stem] > 17 and max(v for s, v in scores.items() if s != stem) < 13, (name, scores)
        found = max(detect.detect_faces(face), key=lambda f: f.confidence)
        offset = np.linalg.norm(align.alignment_points(found.landmarks) - align.alignment_points(align.TEMPLATE_128),
                                axis=1)
        assert offset.max() < 4, (name, offset)

    # a rerun redoes only the photos whose faces are not all there, in two processes, in the photos'
    # order (duplicates are judged in that order), to the same bytes
    before = {name: open(os.path.join(out, name), "rb").read() for name in expected}
    os.remove(os.path.join(out, "anna", "group_1.png"))
    os.remove(os.path.join(out, "ben", "pair_1.png"))
    lines = len(log_lines(out))
    assert main([photos, out, "--workers", "2"])["faces"] == report["faces"]
    assert [r["photo"] for r in log_lines(out)[lines:]] == ["anna/group", "ben/pair"]   # in order
    assert {name: open(os.path.join(out, name), "rb").read() for name in expected} == before


def test_a_folder_it_did_not_write_is_refused_before_tensorflow(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    out.mkdir()
    (out / "mine.png").write_bytes(b"a user's file")
    code = ("import runpy, sys\n"
            f"sys.argv = ['prepare_faces', {str(photos)!r}, {str(out)!r}]\n"
            "try:\n    runpy.run_module('scripts.prepare_faces', run_name='__main__')\n"
            "finally:\n    print('tensorflow imported:', 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout.splitlines() == ["tensorflow imported: False"], result
    assert "holds files this script did not write" in result.stderr.splitlines()[-1]
    assert (out / "mine.png").read_bytes() == b"a user's file"
    assert sorted(os.listdir(out)) == ["mine.png"]


def test_signature_ignores_brightness_and_contrast_but_not_the_face():
    from faces import prepare

    a, b = (cv2.resize(sample(s)[20:198], (128, 128), interpolation=cv2.INTER_AREA) for s in (SHARP, OTHER))
    darker = np.clip(a.astype(np.float64) * 0.7 + 20, 0, 255).astype(np.uint8)
    kept = prepare.Signatures()
    kept.add(prepare.signature(a))
    assert kept.near(prepare.signature(darker))
    assert not kept.near(prepare.signature(b))
    grey = cv2.resize(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64), (16, 16), interpolation=cv2.INTER_AREA)
    z = (grey - grey.mean()).ravel()
    np.testing.assert_allclose(prepare.signature(b), z / np.linalg.norm(z), atol=1e-5)
