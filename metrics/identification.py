"""Rank-1 identification among the people of the evaluated folder (SR, bicubic and HR).

Beside eq. 12's TAR (is the SR face close enough to its own HR photo?), this
asks whether the SR face is closer to some other photo of the right person than
to any photo of anyone else: each probe's dlib descriptor (SR, bicubic, or the
HR itself) is matched against the HR descriptors of every *other* evaluated
face, and the nearest one's identity is the answer. Percent correct over all
evaluated faces; a face whose HR has no detected face (no descriptor) counts as
a miss, as in eq. 12. Identities come from metrics.identity_roc.face_labels
(an identities file, else the parent folder's name).
"""
import numpy as np

from metrics.evaluator import BICUBIC_PREFIX

# per_image() row keys of the dlib descriptors (FaceMetrics with tar_algo)
DESCRIPTOR_KEYS = {"": "desc_algo", BICUBIC_PREFIX: BICUBIC_PREFIX + "desc_algo", "hr_": "hr_desc_algo"}
SUMMARY_KEYS = ("rank1", "bicubic_rank1", "hr_rank1", "identities")
# metrics.csv: a face's identity, and per probe (SR, bicubic, HR) 1 if identified: "rank1" + HIT_SUFFIX, ...
IDENTITY_COLUMN = "identity"
HIT_SUFFIX = "_hit"


def rank1(probes, gallery, labels):
    """Percent of faces i whose probe's nearest gallery face j != i has labels[i] (see hits)."""
    found = hits(probes, gallery, labels)
    return float(100.0 * np.mean(found)) if found.size else float("nan")


def hits(probes, gallery, labels):
    """[n] bool: whether face i's probe's nearest gallery face j != i has labels[i].

    probes, gallery: [n, d] descriptors, a row of NaN where there is none
    (that face is a miss as a probe and absent from the gallery). Euclidean
    distance; a tie goes to the lower index.
    """
    probes, gallery = np.asarray(probes, np.float64), np.asarray(gallery, np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    if probes.shape[0] != n or gallery.shape[0] != n:
        raise ValueError(f"{probes.shape[0]} probes and {gallery.shape[0]} gallery faces for {n} labels")
    in_gallery = np.all(np.isfinite(gallery), axis=1)
    found = np.zeros(n, bool)
    for i in range(n):
        if not np.all(np.isfinite(probes[i])):
            continue
        candidates = in_gallery.copy()
        candidates[i] = False
        if not candidates.any():
            continue
        d = np.linalg.norm(gallery[candidates] - probes[i], axis=1)
        found[i] = labels[candidates][int(np.argmin(d))] == labels[i]
    return found


def identifiable(labels):
    """Whether rank-1 means something: at least 2 identities, and one of them with 2 faces."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return len(counts) >= 2 and counts.max() >= 2


def per_face(rows, labels, dim=128):
    """{"rank1": [n] bool, "bicubic_rank1": ..., "hr_rank1": ...}: each face's hit (SR, bicubic, HR probe)."""
    def stack(key):
        return np.stack([np.full(dim, np.nan) if r[key] is None else np.asarray(r[key], np.float64)
                         for r in rows]) if rows else np.zeros((0, dim))

    gallery = stack(DESCRIPTOR_KEYS["hr_"])
    return {prefix + "rank1": hits(stack(key), gallery, labels) for prefix, key in DESCRIPTOR_KEYS.items()}


def summary(found, labels):
    """rank1 / bicubic_rank1 / hr_rank1 (percent) and identity count from per_face()'s hits."""
    out = {k: float(100.0 * np.mean(v)) if len(v) else float("nan") for k, v in found.items()}
    out["identities"] = int(len(set(labels)))
    return {k: out[k] for k in SUMMARY_KEYS}
