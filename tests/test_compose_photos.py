"""scripts.compose_photos: ordinary photos of known people, every source face placed once, where the manifest says."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.images import list_images, read_image
from faces.compose import MANIFEST
from scripts.compose_photos import main

SAMPLES = os.path.join(ROOT, "datasets", "test")


@pytest.fixture
def people(tmp_path):
    """Three person folders of sample faces, eight, six and one files: more than one photo's worth."""
    samples = list_images(SAMPLES)
    root = tmp_path / "faces"
    for person, chosen in (("p1", samples[:8]), ("p2", samples[2:8]), ("p3", samples[:1])):
        os.makedirs(root / person)
        for path in chosen:
            shutil.copy(path, root / person)
    return root


def test_every_face_of_the_drawn_people_is_placed_once_where_the_manifest_says(people, tmp_path):
    out = tmp_path / "photos"
    manifest = main([str(people), str(out), "--people", "2", "--seed", "3", "--scales", "0.5", "1.5",
                     "--quality", "100"])
    assert json.loads((out / MANIFEST).read_text()) == manifest
    drawn = {name.split("/")[0] for name in manifest}
    assert len(drawn) == 2 and sorted(os.listdir(out)) == sorted(drawn | {MANIFEST})
    placed = [face["source"] for faces in manifest.values() for face in faces]
    expected = [os.path.relpath(p, people) for person in drawn for p in list_images(str(people / person))]
    assert sorted(placed) == sorted(expected)  # each source exactly once
    assert len(manifest) >= 4  # at most 4 faces a photo
    for name, faces in manifest.items():
        assert 1 <= len(faces) <= 4
        photo = read_image(str(out / name))
        for face in faces:
            source = read_image(str(people / face["source"]))
            assert 0.5 <= face["scale"] <= 1.5
            resized = cv2.resize(source, None, fx=face["scale"], fy=face["scale"],
                                 interpolation=cv2.INTER_AREA if face["scale"] < 1 else cv2.INTER_CUBIC)
            h, w = resized.shape[:2]
            region = photo[face["top"]:face["top"] + h, face["left"]:face["left"] + w].astype(float)
            assert region.shape == resized.shape
            assert np.abs(region - resized).mean() < 2.0, (name, face)  # JPEG quality 100 only


def test_an_existing_folder_and_too_many_people_are_refused(people, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(people), str(people / "p1")])
    assert exit_.value.code == 2 and "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([str(people), str(tmp_path / "new"), "--people", "4"])
    assert exit_.value.code == 1 and "fewer than --people 4" in capsys.readouterr().err
