"""scripts.identity_study on the repository's sample faces, with made-up distances: table and figure checked."""
import csv
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.images import prepare_hr, read_image

SAMPLES = os.path.join(ROOT, "datasets", "test")
STEMS = sorted(os.path.splitext(n)[0] for n in os.listdir(SAMPLES))


def plain_difference_interval(loss, groups, top, bottom, resamples=4000, seed=5):
    """95% percentile interval of mean(loss[top]) - mean(loss[bottom]) over whole groups drawn with replacement."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        drawn = np.concatenate([np.flatnonzero(groups == names[k]) for k in rng.choice(len(names), len(names))])
        out.append(loss[drawn][top[drawn]].mean() - loss[drawn][bottom[drawn]].mean())
    return np.percentile(out, [2.5, 97.5])


def test_top_minus_bottom_matches_a_plain_bootstrap_over_people():
    from metrics.identity_study import top_minus_bottom

    rng = np.random.default_rng(2)
    groups = np.repeat([f"p{k}" for k in range(10)], 12)
    loss = rng.normal(0, 0.05, groups.size) + rng.normal(0, 0.05, 10)[np.repeat(np.arange(10), 12)]
    value = rng.random(groups.size)
    loss += 0.03 * value
    top, bottom = value > 0.66, value < 0.33
    got = top_minus_bottom(loss, groups, top, bottom)
    expected = plain_difference_interval(loss, groups, top, bottom)
    assert got == pytest.approx(expected, abs=0.06 * (expected[1] - expected[0]))


@pytest.mark.filterwarnings("ignore::scipy.stats.DegenerateDataWarning")  # 2 people: some resamples lack a third
def test_study_table_and_worst_faces_figure(tmp_path, capsys, dlib_models):
    from scripts import identity_study

    faces = tmp_path / "faces"
    result = tmp_path / "result"
    faces.mkdir()
    result.mkdir()
    rng = np.random.default_rng(0)
    bicubic = rng.uniform(0.5, 0.7, len(STEMS))
    sr = bicubic + rng.normal(0, 0.05, len(STEMS))
    sr[0] = np.nan  # no HR face: left out
    bicubic, sr = bicubic.round(6), sr.round(6)  # as metrics.csv holds them
    people = ["a" if k % 2 else "b" for k in range(len(STEMS))]
    with open(result / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "psnr", "dist_algo", "bicubic_dist_algo", "identity"])
        for k, stem in enumerate(STEMS):
            shutil.copy(os.path.join(SAMPLES, stem + ".jpg"), faces / (stem + ".jpg"))
            hr = prepare_hr(read_image(os.path.join(SAMPLES, stem + ".jpg")))
            for suffix, image in (("_LR.png", cv2.GaussianBlur(hr, (9, 9), 3)), ("_SR.png", hr)):
                cv2.imwrite(str(result / (stem + suffix)), hr[..., ::-1] if suffix == "_SR.png" else image[..., ::-1])
            writer.writerow([stem, "20.0", f"{sr[k]:.6f}", f"{bicubic[k]:.6f}", people[k]])
    figure = tmp_path / "worst.jpg"
    study = identity_study.main([str(result), "--test_path", str(faces), "--figure", str(figure)])
    printed = capsys.readouterr().out

    kept = np.isfinite(sr)  # the sample faces are all found by dlib
    loss = (sr - bicubic)[kept]
    assert f"{kept.sum()} faces of 2 identities; SR worse than bicubic on {100 * np.mean(loss > 0):.1f}%" in printed
    # thirds of the bicubic distance, by rank
    order = np.argsort(bicubic[kept], kind="stable")
    for k, third in enumerate(np.array_split(order, 3)):
        low, high, n, worse, mean, _ = study["bicubic distance"]["thirds"][k]
        assert n == len(third) and mean == pytest.approx(loss[third].mean())
        assert (low, high) == pytest.approx((bicubic[kept][third].min(), bicubic[kept][third].max()), abs=1e-6)
    for person in ("a", "b"):
        mine = np.array(people)[kept] == person
        tar_sr = 100 * np.mean(sr[kept][mine] <= 0.6)
        assert f"| {person} | {mine.sum()} | {100 * np.mean(loss[mine] > 0):.0f}% | {loss[mine].mean():+.3f} " \
               f"| {tar_sr:.0f}% |" in printed

    # the figure: a header, then for each of the 5 worst faces a label and bicubic | SR | HR
    image = cv2.imread(str(figure))
    assert image.shape == (18 + 5 * (18 + 128), 3 * 128, 3)
    worst = [STEMS[i] for i in np.flatnonzero(kept)[np.argsort(-loss)][:5]]
    for row, stem in enumerate(worst):
        top = 18 + row * (18 + 128) + 18
        hr = prepare_hr(read_image(os.path.join(SAMPLES, stem + ".jpg")))[..., ::-1].astype(float)
        assert np.abs(image[top:top + 128, 256:] - hr).mean() < 6  # JPEG-close to this face's HR
    assert os.path.getsize(figure) < 150_000
