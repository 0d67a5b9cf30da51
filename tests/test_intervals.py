"""test.py's bootstrap intervals (metrics.intervals) against a plain NumPy bootstrap written here."""
import numpy as np
import pytest

from metrics import intervals

PEOPLE, FACES = 8, 25
RESAMPLES = 5000


def plain_bootstrap(values, groups, seed=123):
    """95% percentile interval of the mean over faces, drawing whole groups with replacement."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    people = [values[groups == name] for name in sorted(set(groups.tolist()))]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(RESAMPLES):
        drawn = rng.choice(len(people), len(people))
        means.append(np.concatenate([people[k] for k in drawn]).mean())
    return np.percentile(means, [2.5, 97.5])


def assert_close(got, expected):
    # two bootstraps of a few thousand resamples each: their percentiles differ by about 1% of the width
    width = expected[1] - expected[0]
    assert width > 0
    assert got == pytest.approx(expected, abs=0.06 * width)


@pytest.fixture
def faces():
    """8 people of 25 faces (TAR, rank-1 in steps of 0.5 points); people differ far more than their faces do."""
    rng = np.random.default_rng(7)
    labels = np.repeat([f"celeb_{k}" for k in range(PEOPLE)], FACES)
    person = rng.normal(0, 3, PEOPLE)[np.repeat(np.arange(PEOPLE), FACES)]
    psnr = 24 + person + rng.normal(0, 0.5, labels.size)
    gain = 1.5 + 0.5 * person + rng.normal(0, 0.3, labels.size)  # SR's gain varies with the person too
    bicubic = psnr - gain
    psnr[3] = np.inf  # an SR equal to its HR: left out of the mean and of the differences
    dist = 0.6 + 0.05 * person + rng.normal(0, 0.05, labels.size)
    dist[5] = dist[FACES:FACES + 15] = np.nan  # no face found on the HR: a miss, as eq. 12 counts it
    rows = [{"psnr": p, "bicubic_psnr": b, "dist_algo": d, "bicubic_dist_algo": d + 0.03}
            for p, b, d in zip(psnr, bicubic, dist)]
    hits = {"rank1": rng.random(labels.size) < 0.5 + 0.1 * np.sign(person),
            "bicubic_rank1": rng.random(labels.size) < 0.3}
    return rows, labels, hits, psnr, bicubic, dist


def test_intervals_over_people_match_a_plain_bootstrap(faces):
    rows, labels, hits, psnr, bicubic, dist = faces
    got = intervals.summary(rows, labels, hits)
    assert (got["resampled"], got["people"], got["faces"]) == ("people", PEOPLE, PEOPLE * FACES)

    tar = 100.0 * (dist <= 0.6)  # NaN <= 0.6 is False: a miss
    assert 0 < tar.mean() < 100
    rank1 = 100.0 * hits["rank1"]
    for key, values in (("psnr", psnr), ("bicubic_psnr", bicubic), ("tar_algo_0.6", tar), ("rank1", rank1)):
        assert_close(got["means"][key], plain_bootstrap(values, labels))

    gain = psnr - bicubic  # inf for the face left out: dropped from the paired difference
    expected_gain = gain[np.isfinite(gain)].mean()
    assert got["sr_minus_bicubic"]["psnr"]["mean"] == pytest.approx(expected_gain)
    assert_close(got["sr_minus_bicubic"]["psnr"]["ci"], plain_bootstrap(gain, labels))
    rank1_gain = rank1 - 100.0 * hits["bicubic_rank1"]
    assert got["sr_minus_bicubic"]["rank1"]["mean"] == pytest.approx(rank1_gain.mean())
    assert_close(got["sr_minus_bicubic"]["rank1"]["ci"], plain_bootstrap(rank1_gain, labels))
    bicubic_tar = 100.0 * (dist + 0.03 <= 0.6)
    assert got["sr_minus_bicubic"]["tar_algo_0.6"]["mean"] == pytest.approx((tar - bicubic_tar).mean())
    assert_close(got["sr_minus_bicubic"]["tar_algo_0.6"]["ci"], plain_bootstrap(tar - bicubic_tar, labels))

    # seeded: the same faces give the same intervals
    assert intervals.summary(rows, labels, hits) == got


def test_without_identities_faces_are_resampled(faces):
    rows, labels, _, psnr, bicubic, _ = faces
    got = intervals.summary(rows)
    assert (got["resampled"], got["people"]) == ("faces", None)
    by_face = np.arange(len(rows))
    assert_close(got["means"]["psnr"], plain_bootstrap(psnr, by_face))
    assert_close(got["sr_minus_bicubic"]["psnr"]["ci"], plain_bootstrap(psnr - bicubic, by_face))
    # faces of one person move together: over faces the interval is far narrower than over people
    over_people = intervals.summary(rows, labels)["means"]["psnr"]
    assert np.diff(over_people)[0] > 1.5 * np.diff(got["means"]["psnr"])[0]


def test_one_person_has_no_interval_and_the_line_says_so():
    rows = [{"psnr": 20.0 + k, "bicubic_psnr": 19.0} for k in range(3)]
    got = intervals.summary(rows, ["solo"] * 3)
    assert got["means"]["psnr"] is None
    assert got["sr_minus_bicubic"]["psnr"] == {"mean": pytest.approx(2.0), "ci": None}
    assert "PSNR n/a (bicubic n/a; SR-bicubic +2.00 n/a dB)" in intervals.line(got)
    assert "over 1 people" in intervals.line(got)
