"""How well each identity model separates same-identity from different-identity HR faces: the work of
`python -m scripts.identity_roc` (what it measures and how: that script's docstring), and the identity of a
face (`face_labels`), which test.py's rank-1 identification uses too.
"""
import json
import os
import time
from collections import Counter

import numpy as np
from scipy.stats import rankdata

from data.constants import FRAME
from data.images import IMAGE_EXTENSIONS, ImageReadError, list_images, prepare_hr, read_image
from metrics.face import FaceTools
from metrics.identity import ALGO_THRESHOLDS, NET_THRESHOLDS, algo_distance, load_identity_network, net_distance, tar
from models.identity import IdentityWeightsError, find_weights
from utils import atomic_write_text, fail, warn

EMBED_BATCH = 32


class IdentityRocError(ValueError):
    """Bad input (faces, labels, options); the message is one line."""


# ----------------------------------------------------------------- identities

def _key(path):
    return os.path.normpath(path).replace(os.sep, "/")


def read_identities(path):
    """({relative path: identity}, {file name: identity}) of an identities file.

    A file name listed under different identities is left out of the second
    map, so the fallback never guesses.
    """
    by_path, by_name = {}, {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise IdentityRocError(f"cannot read --identities {path}: {getattr(err, 'strerror', None) or err}") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().rsplit(None, 1)
        if len(fields) != 2:
            raise IdentityRocError(f"{path}:{number}: expected `relative/path.jpg IDENTITY`, got {line.strip()!r}")
        face, identity = _key(fields[0]), fields[1]
        if by_path.setdefault(face, identity) != identity:
            raise IdentityRocError(f"{path}:{number}: {face} listed as {by_path[face]} and as {identity}")
        by_name.setdefault(os.path.basename(face), set()).add(identity)
    names = {name: ids.pop() for name, ids in by_name.items() if len(ids) == 1}
    return by_path, names


def face_labels(files, identities=None):
    """Identity of each image: from the identities file, else its parent folder's name."""
    if identities is None:
        return [os.path.basename(os.path.dirname(os.path.abspath(f))) for f in files]
    by_path, by_name = read_identities(identities)
    root = os.path.dirname(os.path.abspath(identities))
    labels, missing = [], []
    for f in files:
        label = by_path.get(_key(os.path.relpath(os.path.abspath(f), root)),
                            by_name.get(os.path.basename(f)))
        if label is None:
            missing.append(f)
        labels.append(label)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise IdentityRocError(f"no identity for {missing[0]}{more} in {identities}")
    return labels


def check_labels(labels):
    """Raise IdentityRocError unless there are same- and different-identity pairs."""
    counts = Counter(labels)
    if len(counts) < 2 or max(counts.values()) < 2:
        largest = max(counts.values(), default=0)
        raise IdentityRocError(
            f"need faces of at least 2 identities and 2 faces of one identity, got {len(labels)} faces of "
            f"{len(counts)} identities (at most {largest} of one)")


# ---------------------------------------------------------------------- faces

def read_faces(files, dataset_mode, prog):
    """(HR faces uint8 [n, 128, 128, 3], indices of the files read); unreadable files warned."""
    faces, kept = [], []
    for i, path in enumerate(files):
        try:
            faces.append(prepare_hr(read_image(path), FRAME, FRAME, dataset_mode))
        except ImageReadError as err:
            warn(prog, f"skipped {path}: {err}")
            continue
        kept.append(i)
    return np.stack(faces) if faces else np.zeros((0, FRAME, FRAME, 3), np.uint8), kept


def algorithm_vectors(faces, tools):
    """(dlib descriptors [k, 128], indices of the k faces where dlib found a face)."""
    vectors, kept = [], []
    for i, face in enumerate(faces):
        box = tools.detect_box(face)
        if box is None:
            continue
        vectors.append(tools.descriptor(face, box))
        kept.append(i)
    return np.asarray(vectors, np.float64).reshape(len(kept), -1), kept


def network_vectors(faces, network, batch=EMBED_BATCH):
    """L2-normalised FaceNet embeddings [n, dim] of all faces."""
    chunks = [np.asarray(network.embed(faces[i:i + batch].astype(np.float32)), np.float64)
              for i in range(0, len(faces), batch)]
    return np.concatenate(chunks)


# ---------------------------------------------------------------------- pairs

def pair_distances(vectors, distance):
    """distance() of every pair i < j, in np.triu_indices(n, 1) order."""
    n = len(vectors)
    return np.concatenate([np.zeros(0)] + [np.atleast_1d(distance(vectors[i], vectors[i + 1:]))
                                           for i in range(n - 1)])


def same_pairs(labels):
    """Boolean per pair i < j (np.triu_indices(n, 1) order): same identity."""
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    i, j = np.triu_indices(len(codes), 1)
    return codes[i] == codes[j]


def roc_auc(same_scores, different_scores):
    """P(same score > different score) + P(tie) / 2, exactly, from average ranks."""
    same = np.asarray(same_scores, np.float64).ravel()
    different = np.asarray(different_scores, np.float64).ravel()
    if same.size == 0 or different.size == 0:
        raise ValueError("ROC AUC needs both same and different pairs")
    ranks = rankdata(np.concatenate([same, different]))
    u = ranks[:same.size].sum() - same.size * (same.size + 1) / 2.0
    return float(u / (same.size * different.size))


def evaluate(distances, labels, thresholds):
    """ROC AUC and TAR/FAR (percent) at each threshold, from pair distances and face labels."""
    same = same_pairs(labels)
    row = {"same_pairs": int(same.sum()), "different_pairs": int((~same).sum()),
           "roc_auc": roc_auc(-distances[same], -distances[~same])}
    for t in thresholds:
        row[f"tar_{t:g}"] = tar(distances[same], t)
        row[f"far_{t:g}"] = tar(distances[~same], t)
    return row


# --------------------------------------------------------------------- models

def load_face_tools():
    """(FaceTools, None) or (None, why it cannot run)."""
    try:
        return FaceTools().check(descriptors=True), None
    except ImportError as err:  # EvalDependencyError: dlib or its model files
        return None, str(err)


def load_network(id_weights):
    """(IdentityNetwork, None) or (None, why it cannot run), as test.py's face_evaluator."""
    try:
        path = find_weights(id_weights)
    except IdentityWeightsError:
        return None, (f"FaceNet weights file not found: {id_weights}" if id_weights
                      else "no FaceNet weights found; run `python -m scripts.get_facenet_weights` "
                           "or pass --id_weights PATH")
    try:
        return load_identity_network(path), None
    except (ImportError, IdentityWeightsError) as err:
        return None, str(err).splitlines()[0]


def run_model(name, faces, labels, face_tools=None, network=None):
    """Result row of one model; raises IdentityRocError when its faces leave no pairs to compare."""
    start = time.perf_counter()
    if name == "algorithm":
        vectors, kept = algorithm_vectors(faces, face_tools)
        distance, thresholds = algo_distance, ALGO_THRESHOLDS
        row = {"faces": len(kept), "no_face": len(faces) - len(kept)}
    else:
        vectors, kept = network_vectors(faces, network), list(range(len(faces)))
        distance, thresholds = net_distance, NET_THRESHOLDS
        row = {"faces": len(kept), "weights": network.weights_path,
               "standardization": network.standardization}
    labels = [labels[i] for i in kept]
    try:
        check_labels(labels)
    except IdentityRocError as err:
        raise IdentityRocError(f"{row['faces']} faces left: {err}") from err
    row.update(evaluate(pair_distances(vectors, distance), labels, thresholds))
    row["thresholds"] = list(thresholds)
    row["seconds"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------- output

def table(rows):
    """The printed table: one line per model that ran."""
    lines = [f"{'model':<10} {'faces':>6} {'no face':>7} {'same pairs':>10} {'diff pairs':>10} "
             f"{'ROC AUC':>7}  TAR/FAR % at distance <= d"]
    for name, row in rows.items():
        at = "  ".join(f"d={t:g}: {row[f'tar_{t:g}']:6.2f}/{row[f'far_{t:g}']:5.2f}" for t in row["thresholds"])
        lines.append(f"{name:<10} {row['faces']:>6} {row.get('no_face', 0):>7} {row['same_pairs']:>10} "
                     f"{row['different_pairs']:>10} {row['roc_auc']:>7.4f}  {at}")
    return "\n".join(lines)


def write_json(path, result):
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")


def run(args, prog, face_tools=None, network=None):
    """The comparison scripts/identity_roc.py's `args` ask for, its messages prefixed `prog`; `face_tools` /
    `network` may be given loaded (tests, a caller that has them)."""
    if not os.path.isdir(args.test_path):
        fail(prog, f"--test_path {args.test_path} is not a folder")
    files = list_images(args.test_path)[:args.limit]
    if not files:
        fail(prog, f"no images ({', '.join(IMAGE_EXTENSIONS)}) under --test_path {args.test_path}")
    try:
        labels = face_labels(files, args.identities)
    except IdentityRocError as err:
        fail(prog, err)
    faces, read = read_faces(files, args.dataset_mode, prog)
    labels = [labels[i] for i in read]
    try:
        check_labels(labels)
    except IdentityRocError as err:
        unreadable = len(files) - len(read)
        fail(prog, f"{err}{f' ({unreadable} unreadable images left out)' if unreadable else ''}")
    print(f"{len(faces)} faces of {len(set(labels))} identities under {args.test_path}", flush=True)

    rows, skipped = {}, {}
    for name in args.models:
        reason = None
        if name == "algorithm" and face_tools is None:
            face_tools, reason = load_face_tools()
        if name == "network" and network is None:
            network, reason = load_network(args.id_weights)
        if reason is None:
            try:
                rows[name] = run_model(name, faces, labels, face_tools, network)
            except IdentityRocError as err:
                reason = str(err)
        if reason is not None:
            skipped[name] = reason
            print(f"{name}: skipped: {reason}", flush=True)
    if not rows:
        fail(prog, "no identity model could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))

    print(table(rows))
    result = {"test_path": args.test_path, "identities": args.identities, "dataset_mode": args.dataset_mode,
              "hr_size": FRAME, "faces": len(faces), "unreadable": len(files) - len(read),
              "identity_count": len(set(labels)), "models": rows, "skipped": skipped}
    try:
        write_json(args.output, result)
    except OSError as err:
        fail(prog, f"cannot write {args.output}: {err.strerror or err}")
    print(f"wrote {args.output}")
    return result
