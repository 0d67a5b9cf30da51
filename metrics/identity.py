"""Identity preservation (TAR, eq. 12): the two identity distances and the acceptance rate.

TAR = N_TA / N_ALL x 100: the percentage of test images whose SR-vs-HR
identity distance is within a threshold d (accepted when distance <= d, the
rule of face_recognition.compare_faces). N_ALL is every evaluated image: an
image without a distance (no face detected on its HR, so no dlib descriptor)
counts as not accepted.

* "algorithm" (Table 7, [22]): dlib 128-d face descriptors, Euclidean
  distance, d in ALGO_THRESHOLDS = (0.5, 0.6). Both descriptors are taken on
  the face box detected on the HR image (face_recognition.face_encodings with
  known_face_locations), so SR and HR are described on the same region.
* "network" (Table 7, [18]): FaceNet embeddings from models.identity, squared
  L2 distance of L2-normalised embeddings, d in NET_THRESHOLDS = (0.02, 0.04).

test.py's evaluator (metrics.evaluator.FaceMetrics) and
scripts/identity_roc.py (which checks the thresholds) both measure with these.
"""
import numpy as np

from metrics.face import EvalDependencyError

ALGO_THRESHOLDS = (0.5, 0.6)
NET_THRESHOLDS = (0.02, 0.04)


def tar_key(kind, threshold):
    """'tar_algo_0.5', 'tar_net_0.02', ..."""
    return f"tar_{kind}_{threshold:g}"


def tar(distances, threshold):
    """Eq. 12: percent of ``distances`` <= threshold; NaN/inf distances are rejections.

    NaN for an empty list.
    """
    d = np.asarray(distances, np.float64).ravel()
    if d.size == 0:
        return float("nan")
    accepted = np.isfinite(d) & (d <= threshold)
    return float(100.0 * np.count_nonzero(accepted) / d.size)


def algo_distance(desc_sr, desc_hr):
    """Euclidean distance of dlib descriptors ([128] -> float, [N, 128] -> [N])."""
    a, b = np.asarray(desc_sr, np.float64), np.asarray(desc_hr, np.float64)
    d = np.linalg.norm(a - b, axis=-1)
    return float(d) if d.ndim == 0 else d


def _l2_normalise(x):
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def net_distance(emb_sr, emb_hr):
    """Squared L2 distance of L2-normalised embeddings (in [0, 4]; [D] -> float, [N, D] -> [N]).

    The embeddings are normalised here (a no-op for already normalised ones).
    """
    a = _l2_normalise(np.asarray(emb_sr, np.float64))
    b = _l2_normalise(np.asarray(emb_hr, np.float64))
    d = np.sum((a - b) ** 2, axis=-1)
    return float(d) if d.ndim == 0 else d


def load_identity_network(weights_path=None):
    """models.identity.load_identity_network, with missing pieces as EvalDependencyError."""
    try:
        # Imported here, not at the top: models.identity loads TensorFlow, and test.py's metric worker
        # processes import this module (through metrics.evaluator) and must never load it.
        from models.identity import load_identity_network as load
    except ImportError as err:
        raise EvalDependencyError(
            f"tar_net needs models.identity and its dependencies ({err}): pip install -r requirements.txt") from err
    return load(weights_path)
