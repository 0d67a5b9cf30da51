"""Identity preservation (TAR, eq. 12) and the face/VIF evaluation of test.py.

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

Keys written to metrics.csv / summary.json (TAR in percent), each also with a
``bicubic_`` prefix for the bicubic baseline: see SUMMARY_KEYS.
"""
import numpy as np

from metrics.face import EvalDependencyError, FaceTools, INSTALL_HINT, fr_quality

ALGO_THRESHOLDS = (0.5, 0.6)
NET_THRESHOLDS = (0.02, 0.04)
BICUBIC_PREFIX = "bicubic_"


def tar_key(kind, threshold):
    """'tar_algo_0.5', 'tar_net_0.02', ..."""
    return f"tar_{kind}_{threshold:g}"


FR_KEYS = ("fr_psnr", "fr_ssim", "fr_images")
VIF_KEYS = ("vif",)
TAR_ALGO_KEYS = tuple(tar_key("algo", t) for t in ALGO_THRESHOLDS)
TAR_NET_KEYS = tuple(tar_key("net", t) for t in NET_THRESHOLDS)
KEYS = FR_KEYS + VIF_KEYS + TAR_ALGO_KEYS + TAR_NET_KEYS
SUMMARY_KEYS = KEYS + tuple(BICUBIC_PREFIX + k for k in KEYS)

# per-image values (metrics.csv rows), also each with the bicubic_ prefix
PER_IMAGE_KEYS = ("fr_psnr", "fr_ssim", "vif", "dist_algo", "dist_net")


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


def _nanmean(values):
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    return float(np.mean(v)) if v.size else float("nan")


def load_identity_network(weights_path=None):
    """models.identity.load_identity_network, with missing pieces as EvalDependencyError."""
    try:
        from models.identity import load_identity_network as load
    except ImportError as err:
        raise EvalDependencyError(
            f"tar_net needs models.identity and its dependencies ({err}): pip install -r requirements.txt") from err
    return load(weights_path)


class IdentityEvaluator:
    """Per-image FR-PSNR/FR-SSIM, VIF and identity distances; summary with TARs.

    Flags choose the metrics; missing dependencies of a requested metric raise
    EvalDependencyError (an ImportError, one-line message) here, at
    construction. ``face_tools`` / ``identity_network`` may be injected (tests,
    or to share loaded models); by default a FaceTools() (dlib HOG, upsample 1,
    5-point landmarks) and models.identity.load_identity_network(id_weights).
    """

    def __init__(self, fr=True, vif=True, tar_algo=True, tar_net=True, id_weights=None,
                 face_tools=None, identity_network=None):
        self.fr, self.vif, self.tar_algo, self.tar_net = bool(fr), bool(vif), bool(tar_algo), bool(tar_net)
        self.face_tools = None
        self.identity_network = None
        if self.fr or self.tar_algo:
            self.face_tools = face_tools if face_tools is not None else FaceTools()
            if isinstance(self.face_tools, FaceTools):
                self.face_tools.check(descriptors=self.tar_algo)
        if self.vif:
            from metrics.vif import vif as vif_fn
            self._vif = vif_fn
        if self.tar_net:
            self.identity_network = (identity_network if identity_network is not None
                                     else load_identity_network(id_weights))

    @property
    def summary_keys(self):
        """The keys summary() returns: SUMMARY_KEYS restricted to the enabled metrics."""
        keys = ()
        if self.fr:
            keys += FR_KEYS
        if self.vif:
            keys += VIF_KEYS
        if self.tar_algo:
            keys += TAR_ALGO_KEYS
        if self.tar_net:
            keys += TAR_NET_KEYS
        return keys + tuple(BICUBIC_PREFIX + k for k in keys)

    @property
    def per_image_keys(self):
        keys = ()
        if self.fr:
            keys += ("fr_psnr", "fr_ssim")
        if self.vif:
            keys += ("vif",)
        if self.tar_algo:
            keys += ("dist_algo",)
        if self.tar_net:
            keys += ("dist_net",)
        return keys + tuple(BICUBIC_PREFIX + k for k in keys)

    @property
    def descriptor_keys(self):
        """Extra per_image() keys: the dlib descriptors of SR, bicubic and HR (None without an HR face)."""
        return ("desc_algo", BICUBIC_PREFIX + "desc_algo", "hr_desc_algo") if self.tar_algo else ()

    def per_image(self, sr_uint8, bicubic_uint8, hr_uint8):
        """dict of per-image values (keys: per_image_keys, then descriptor_keys).

        fr_psnr/fr_ssim are NaN when no usable face box is found on the HR;
        dist_algo is NaN when no face is found on the HR.
        """
        row = self.local_row(sr_uint8, bicubic_uint8, hr_uint8)
        if self.tar_net:
            row.update(self.net_rows([sr_uint8], [bicubic_uint8], [hr_uint8])[0])
        return {k: row[k] for k in self.per_image_keys + self.descriptor_keys}

    def local_row(self, sr_uint8, bicubic_uint8, hr_uint8):
        """per_image() less the FaceNet distances: what a TensorFlow-free worker process computes.

        The HR face box and HR descriptor are found once and serve both the SR
        and the bicubic values.
        """
        images = {"": np.asarray(sr_uint8), BICUBIC_PREFIX: np.asarray(bicubic_uint8)}
        hr = np.asarray(hr_uint8)
        for prefix, img in images.items():
            if img.shape != hr.shape:
                raise ValueError(f"{prefix or 'SR '}image shape {img.shape} differs from HR {hr.shape}")
        row = {}
        box = self.face_tools.detect_box(hr) if (self.fr or self.tar_algo) else None
        if self.fr:
            for prefix, img in images.items():
                row[prefix + "fr_psnr"], row[prefix + "fr_ssim"] = fr_quality(img, hr, box)
        if self.vif:
            for prefix, img in images.items():
                row[prefix + "vif"] = self._vif(hr, img)
        if self.tar_algo:
            # the descriptors ride along (not in per_image_keys) for metrics.identification's rank-1
            row["hr_desc_algo"] = None if box is None else self.face_tools.descriptor(hr, box)
            for prefix, img in images.items():
                row[prefix + "desc_algo"] = None if box is None else self.face_tools.descriptor(img, box)
                row[prefix + "dist_algo"] = (float("nan") if box is None
                                             else algo_distance(row[prefix + "desc_algo"], row["hr_desc_algo"]))
        return row

    def net_rows(self, srs, bicubics, hrs):
        """[{dist_net, bicubic_dist_net}] of N faces with one FaceNet call on their 3N images.

        Each HR is embedded once, for both distances. The values depend (in
        the last bits) on how faces are grouped into calls, so callers that
        must reproduce a run group them the same way.
        """
        n = len(hrs)
        batch = np.stack([*srs, *bicubics, *hrs]).astype(np.float32)
        emb = np.asarray(self.identity_network.embed(batch), np.float64)
        return [{"dist_net": net_distance(emb[i], emb[2 * n + i]),
                 BICUBIC_PREFIX + "dist_net": net_distance(emb[n + i], emb[2 * n + i])} for i in range(n)]

    def summary(self, rows):
        """Means / TARs / fr_images over per_image() rows (keys: summary_keys).

        fr_psnr/fr_ssim: means over the images with a usable HR face box
        (fr_images of them; NaN if none; inf if a crop is identical, as
        psnr). vif: mean. TARs: eq. 12 in percent over all rows.
        """
        rows = list(rows)
        out = {}
        for prefix in ("", BICUBIC_PREFIX):
            col = lambda k: [r[prefix + k] for r in rows]  # noqa: E731
            if self.fr:
                out[prefix + "fr_psnr"] = _nanmean(col("fr_psnr"))
                out[prefix + "fr_ssim"] = _nanmean(col("fr_ssim"))
                ok = ~np.isnan(np.asarray(col("fr_psnr"), np.float64))
                out[prefix + "fr_images"] = int(np.count_nonzero(ok))
            if self.vif:
                out[prefix + "vif"] = _nanmean(col("vif"))
            if self.tar_algo:
                for t, k in zip(ALGO_THRESHOLDS, TAR_ALGO_KEYS):
                    out[prefix + k] = tar(col("dist_algo"), t)
            if self.tar_net:
                for t, k in zip(NET_THRESHOLDS, TAR_NET_KEYS):
                    out[prefix + k] = tar(col("dist_net"), t)
        return {k: out[k] for k in self.summary_keys}


__all__ = [
    "ALGO_THRESHOLDS", "NET_THRESHOLDS", "KEYS", "SUMMARY_KEYS", "PER_IMAGE_KEYS", "FR_KEYS", "VIF_KEYS",
    "TAR_ALGO_KEYS", "TAR_NET_KEYS", "BICUBIC_PREFIX", "EvalDependencyError", "INSTALL_HINT",
    "IdentityEvaluator", "algo_distance", "net_distance", "tar", "tar_key", "load_identity_network",
]
