"""scripts.identity_roc: the exact ROC AUC, identity labels, errors and a run on the sample faces.

No /work/shared data and no downloaded weights: the faces are the 8 sample
faces of datasets/test, given made-up identities by folder or by file; the
network run uses a randomly initialised FaceNet; the dlib run is skipped where
dlib or its model files are not installed.
"""
import json
import os
import shutil
from itertools import combinations

import numpy as np
import pytest

from conftest import ROOT
from metrics import identity_roc as roc
from scripts import identity_roc as roc_script

SAMPLES = sorted(os.path.join(ROOT, "datasets", "test", n) for n in os.listdir(os.path.join(ROOT, "datasets", "test"))
                 if n.endswith(".jpg"))


def brute_force_auc(same, different):
    wins = sum(1.0 if s > d else 0.5 if s == d else 0.0 for s in same for d in different)
    return wins / (len(same) * len(different))


@pytest.fixture
def two_folders(tmp_path):
    """tmp/a/ with the first 4 sample faces, tmp/b/ with the other 4."""
    for i, src in enumerate(SAMPLES):
        folder = tmp_path / ("a" if i < 4 else "b")
        folder.mkdir(exist_ok=True)
        shutil.copy(src, folder / os.path.basename(src))
    return tmp_path


# ------------------------------------------------------------------------ AUC

@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    # rounded values tie within and across the groups; the shared 0.0 makes sure of one cross tie
    same = np.append(np.round(rng.normal(0.5, 1.0, rng.integers(1, 40)), 1), 0.0)
    different = np.append(np.round(rng.normal(0.0, 1.0, rng.integers(1, 60)), 1), 0.0)
    assert roc.roc_auc(same, different) == pytest.approx(brute_force_auc(same, different), abs=1e-12)


def test_roc_auc_extremes_and_empty():
    assert roc.roc_auc([3, 4], [1, 2]) == 1.0
    assert roc.roc_auc([1, 2], [3, 4]) == 0.0
    assert roc.roc_auc([1, 1], [1, 1, 1]) == 0.5
    with pytest.raises(ValueError):
        roc.roc_auc([], [1.0])


def test_evaluate_pairs_in_triu_order():
    from metrics.identity import algo_distance

    rng = np.random.default_rng(0)
    vectors = np.round(rng.normal(size=(7, 3)), 1)
    labels = ["x", "y", "x", "z", "y", "x", "z"]
    distances = roc.pair_distances(vectors, algo_distance)
    pairs = list(combinations(range(7), 2))
    assert np.allclose(distances, [np.linalg.norm(vectors[i] - vectors[j]) for i, j in pairs])
    row = roc.evaluate(distances, labels, (1.0, 2.0))
    same = [d for d, (i, j) in zip(distances, pairs) if labels[i] == labels[j]]
    different = [d for d, (i, j) in zip(distances, pairs) if labels[i] != labels[j]]
    assert (row["same_pairs"], row["different_pairs"]) == (len(same), len(different)) == (5, 16)
    assert row["roc_auc"] == pytest.approx(brute_force_auc(-np.array(same), -np.array(different)))
    for t in (1.0, 2.0):
        assert row[f"tar_{t:g}"] == pytest.approx(100.0 * np.mean(np.array(same) <= t))
        assert row[f"far_{t:g}"] == pytest.approx(100.0 * np.mean(np.array(different) <= t))


# --------------------------------------------------------------------- labels

def test_labels_from_parent_folders(two_folders):
    from data.images import list_images

    files = list_images(str(two_folders))
    assert roc.face_labels(files) == ["a"] * 4 + ["b"] * 4


def test_labels_from_identities_file_by_path_then_by_name(two_folders):
    from data.images import list_images

    files = list_images(str(two_folders))
    names = [os.path.relpath(f, two_folders).replace(os.sep, "/") for f in files]
    lines = [f"{n} {100 + i % 3}" for i, n in enumerate(names[:6])]
    lines += ["", f"elsewhere/{os.path.basename(names[6])} 7", f"other/{os.path.basename(names[7])}   8  "]
    (two_folders / "ids.txt").write_text("\n".join(lines) + "\n")
    labels = roc.face_labels(files, str(two_folders / "ids.txt"))
    assert labels == ["100", "101", "102", "100", "101", "102", "7", "8"]


def test_unlisted_face_is_an_error_naming_it(two_folders, capsys):
    (two_folders / "ids.txt").write_text(f"a/{os.path.basename(SAMPLES[0])} 1\n")
    with pytest.raises(SystemExit) as exc:
        roc_script.main(["--test_path", str(two_folders), "--identities", str(two_folders / "ids.txt"),
                         "--output", str(two_folders / "out.json")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("identity_roc: error: no identity for ") and os.path.basename(SAMPLES[1]) in err
    assert "\n" not in err


def test_single_identity_is_one_clear_error(two_folders, capsys):
    shutil.rmtree(two_folders / "b")
    with pytest.raises(SystemExit) as exc:
        roc_script.main(["--test_path", str(two_folders), "--output", str(two_folders / "out.json")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == ("identity_roc: error: need faces of at least 2 identities and 2 faces of one identity, "
                   "got 4 faces of 1 identities (at most 4 of one)")
    assert not (two_folders / "out.json").exists()


def test_no_identity_with_two_faces_is_an_error(tmp_path, capsys):
    for i, src in enumerate(SAMPLES[:3]):
        (tmp_path / f"p{i}").mkdir()
        shutil.copy(src, tmp_path / f"p{i}")
    with pytest.raises(SystemExit):
        roc_script.main(["--test_path", str(tmp_path), "--output", str(tmp_path / "out.json")])
    assert "got 3 faces of 3 identities (at most 1 of one)" in capsys.readouterr().err


# ----------------------------------------------------------------- full runs

def test_network_run_with_random_facenet(two_folders, capsys):
    from models.identity import IdentityNetwork

    network = IdentityNetwork(pretrained=False)
    out = two_folders / "res" / "roc.json"
    result = roc_script.main(["--test_path", str(two_folders), "--output", str(out), "--models", "network"],
                             network=network)
    row = result["models"]["network"]
    assert (row["faces"], row["same_pairs"], row["different_pairs"]) == (8, 12, 16)
    assert 0.0 <= row["roc_auc"] <= 1.0
    assert row["thresholds"] == [0.02, 0.04]
    assert json.loads(out.read_text())["models"]["network"]["same_pairs"] == 12
    printed = capsys.readouterr().out
    assert "8 faces of 2 identities" in printed and "network" in printed and "d=0.02:" in printed

    limited = roc_script.main(["--test_path", str(two_folders), "--output", str(out), "--models", "network",
                               "--limit", "6"], network=network)
    assert (limited["models"]["network"]["same_pairs"], limited["models"]["network"]["different_pairs"]) == (7, 8)


def test_algorithm_run_with_dlib(two_folders):
    face_tools, reason = roc.load_face_tools()
    if face_tools is None:
        pytest.skip(reason)
    result = roc_script.main(["--test_path", str(two_folders), "--output", str(two_folders / "out.json"),
                              "--models", "algorithm"])
    row = result["models"]["algorithm"]
    assert row["faces"] + row["no_face"] == 8 and row["faces"] >= 4
    assert row["same_pairs"] + row["different_pairs"] == row["faces"] * (row["faces"] - 1) // 2
    assert 0.0 <= row["roc_auc"] <= 1.0
