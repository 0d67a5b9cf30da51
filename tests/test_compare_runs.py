"""scripts.compare_runs: two runs' metrics.csv, paired per face, differences checked against a plain bootstrap."""
import csv
import json

import numpy as np
import pytest
from test_intervals import assert_close, plain_bootstrap

from metrics import run_comparison
from scripts import compare_runs

PEOPLE, FACES = 6, 20


def write_run(folder, names, columns, order=enumerate):
    folder.mkdir()
    with open(folder / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *columns])
        for i, name in order(names):
            writer.writerow([name] + [v[i] if isinstance(v[i], str) else f"{v[i]:.6f}" for v in columns.values()])
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(3)
    people = np.repeat([f"celeb_{k}" for k in range(PEOPLE)], FACES)
    names = [f"{p}/{i:06d}" for i, p in enumerate(people)]
    person = rng.normal(0, 1, PEOPLE)[np.repeat(np.arange(PEOPLE), FACES)]
    psnr_b = 22 + 2 * person + rng.normal(0, 0.3, people.size)
    psnr_a = psnr_b + 0.4 + 0.1 * person + rng.normal(0, 0.1, people.size)  # A gains, by how much depends on who
    brisque_a, brisque_b = 60 + rng.normal(0, 5, people.size), 60 + rng.normal(0, 5, people.size)
    dist_b = 0.6 + 0.05 * person + rng.normal(0, 0.04, people.size)
    dist_a = dist_b - 0.01
    dist_a[4] = dist_b[4] = np.nan
    hit_a, hit_b = rng.random(people.size) < 0.45, rng.random(people.size) < 0.35
    run_a = write_run(tmp_path / "a", names, {"psnr": psnr_a, "brisque": brisque_a, "dist_algo": dist_a,
                                               "identity": people, "rank1_hit": hit_a.astype(int)})
    # B misses the first face and has one A lacks: both are left out; its rows are in another order
    run_b = write_run(tmp_path / "b", names[1:] + ["extra/1"],
                      {"psnr": np.append(psnr_b[1:], 30.0), "brisque": np.append(brisque_b[1:], 50.0),
                       "dist_algo": np.append(dist_b[1:], 0.1), "identity": np.append(people[1:], "extra"),
                       "rank1_hit": np.append(hit_b[1:], 1).astype(int)},
                      order=lambda names: reversed(list(enumerate(names))))
    keep = slice(1, None)
    return run_a, run_b, people[keep], {"psnr": (psnr_a[keep], psnr_b[keep]),
                                        "brisque": (brisque_a[keep], brisque_b[keep]),
                                        **{f"tar_algo_{t}": (100.0 * (dist_a[keep] <= t), 100.0 * (dist_b[keep] <= t))
                                           for t in (0.5, 0.6)},
                                        "rank1": (100.0 * hit_a[keep], 100.0 * hit_b[keep])}


def test_paired_differences_over_people_match_a_plain_bootstrap(runs, tmp_path, capsys):
    run_a, run_b, people, expected = runs
    out = tmp_path / "comparison.json"
    result = compare_runs.main([run_a, run_b, "--output", str(out)])
    assert json.loads(out.read_text())["figures"] == result["figures"]
    assert (result["resampled"], result["people"], result["faces"]) == ("people", PEOPLE, PEOPLE * FACES - 1)
    assert (result["only_in_a"], result["only_in_b"]) == (1, 1)
    assert set(result["figures"]) == set(expected)
    for key, (a, b) in expected.items():
        got = result["figures"][key]
        assert got["a"] == pytest.approx(a.mean(), abs=1e-5) and got["b"] == pytest.approx(b.mean(), abs=1e-5)
        assert got["a_minus_b"]["mean"] == pytest.approx((a - b).mean(), abs=1e-5)
        assert_close(got["a_minus_b"]["ci"], plain_bootstrap(a - b, people))
    printed = capsys.readouterr()
    assert "left out 1 faces only in A and 1 only in B" in printed.err
    lines = {line.split()[0]: line for line in printed.out.splitlines()}
    assert lines["psnr"].endswith("A better")  # +0.4 dB on every person
    assert lines["brisque"].endswith("no clear difference")


def test_lower_brisque_is_better_and_unknown_identities_resample_faces(tmp_path):
    names = [f"f{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    brisque_b = 60 + rng.normal(0, 1, 30)
    run_a = write_run(tmp_path / "a", names, {"brisque": brisque_b - 5})
    run_b = write_run(tmp_path / "b", names, {"brisque": brisque_b})
    result = run_comparison.compare(run_comparison.read_run(run_a), run_comparison.read_run(run_b))
    assert (result["resampled"], result["people"]) == ("faces", None)
    assert run_comparison.verdict("brisque", result["figures"]["brisque"]["a_minus_b"]) == "A better"


def test_runs_that_disagree_on_identities_or_share_no_face_fail(tmp_path):
    a = write_run(tmp_path / "a", ["x", "y"], {"psnr": [20.0, 21.0], "identity": ["p", "q"]})
    b = write_run(tmp_path / "b", ["x", "y"], {"psnr": [20.0, 21.0], "identity": ["p", "p"]})
    c = write_run(tmp_path / "c", ["z"], {"psnr": [20.0]})
    with pytest.raises(SystemExit):
        compare_runs.main([a, b])
    with pytest.raises(SystemExit):
        compare_runs.main([a, c])
    with pytest.raises(SystemExit):
        compare_runs.main([a, str(tmp_path / "missing")])
