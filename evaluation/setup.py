"""What a test.py run measures with: the generator, and the optional metrics that can run on this machine."""
import sys

from deploy.inference import load_inference
from deploy.int8 import int8_inference, lacks_vnni
from evaluation import PROG
from metrics import brisque
from metrics.evaluator import FaceMetrics
from metrics.face import INSTALL_HINT, FaceTools
from metrics.identification import identifiable
from metrics.identity import load_identity_network
from metrics.identity_roc import IdentityRocError, face_labels
from metrics.vif import min_size
from models import CheckpointError
from models.generator import MIXED_POLICY
from models.identity import IdentityWeightsError, find_weights
from options.test_options import NO_CHECKPOINT_HELP
from utils import fail, warn

EVAL_INSTALL = f"install: {INSTALL_HINT}"  # dlib, its face models and brisque


def load_model(opt):
    if opt.int8:
        if lacks_vnni():
            warn(PROG, "this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8 in /proc/cpuinfo): int8 may run no "
                 "faster than float32 here")
        try:
            return int8_inference(opt.weight_path, opt.lr_size, opt.batchSize,
                                  log=lambda line: print(f"{PROG}: {line}", file=sys.stderr, flush=True))
        except CheckpointError as err:
            fail(PROG, f"{err}; {NO_CHECKPOINT_HELP}" if "no checkpoint" in str(err) else str(err))
    try:
        return load_inference(opt.weight_path, lr_size=opt.lr_size, output_nc=opt.output_nc,
                              policy=MIXED_POLICY if opt.mixed_precision else None)
    except CheckpointError as err:
        fail(PROG, f"{err}; {NO_CHECKPOINT_HELP}")


def optional_off_line(off):
    """The one informational line naming the optional metrics that cannot run here and how to enable
    them; off: {how to enable: [metric names]}. None when all can run."""
    if not off:
        return None
    parts = [f"{', '.join(names)} ({how})" for how, names in off.items()]
    return (f"{PROG}: info: optional metrics off: {'; '.join(parts)}. The --no_fr, --no_tar_algo, --no_tar_net "
            "and --no_brisque flags silence this line")


def face_metrics_for(opt, off):
    """FaceMetrics for the requested paper metrics, less those that cannot run here (added to `off`,
    {how to enable: [names]}, for `optional_off_line`)."""
    if opt.lr_input or opt.real_world:
        return None
    want = {"fr": not opt.no_fr, "vif": not opt.no_vif, "tar_algo": not opt.no_tar_algo,
            "tar_net": not opt.no_tar_net}
    if want["vif"] and opt.crop_size < min_size():
        warn(PROG, f"VIF is off: it needs faces of at least {min_size()} px, --crop_size is {opt.crop_size}")
        want["vif"] = False
    face_tools = identity_network = None
    if want["fr"] or want["tar_algo"]:
        try:
            face_tools = FaceTools().check(descriptors=want["tar_algo"])
        except ImportError:  # EvalDependencyError: dlib or its model files
            names = [n for n, on in (("FR-PSNR/FR-SSIM", want["fr"]), ("TAR algorithm", want["tar_algo"])) if on]
            off.setdefault(EVAL_INSTALL, []).extend(names)
            want["fr"] = want["tar_algo"] = False
    if want["tar_net"]:
        reason = None
        try:
            path = find_weights(opt.id_weights)
        except IdentityWeightsError:
            reason = (f"FaceNet weights file not found: {opt.id_weights}" if opt.id_weights
                      else "no FaceNet weights found")
        else:
            try:
                identity_network = load_identity_network(path)
            except (ImportError, IdentityWeightsError) as err:
                reason = str(err).splitlines()[0]
        if reason:
            off.setdefault(f"{reason}: run `python -m scripts.get_facenet_weights` or pass --id_weights PATH",
                           []).append("TAR network")
            want["tar_net"] = False
    if not any(want.values()):
        return None
    return FaceMetrics(**want, face_tools=face_tools, identity_network=identity_network)


def brisque_on(opt, off):
    """Whether BRISQUE runs: HR mode, not switched off, and its package installed (else added to `off`)."""
    if opt.no_brisque or opt.lr_input or opt.real_world:
        return False
    try:
        brisque.load_model()
    except ImportError:  # EvalDependencyError: the brisque package
        off.setdefault(EVAL_INSTALL, []).append("BRISQUE")
        return False
    return True


def identities(opt, files, face_metrics):
    """{path: identity} when rank-1 identification can run (dlib descriptors, 2+ identities), else None."""
    if opt.lr_input or face_metrics is None or not face_metrics.tar_algo:
        if opt.identities:
            warn(PROG, "rank-1 identification off: it needs HR mode and the TAR algorithm's dlib descriptors")
        return None
    try:
        labels = face_labels(files, opt.identities)
    except IdentityRocError as err:
        fail(PROG, err)
    if identifiable(labels):
        return dict(zip(files, labels))
    if opt.identities:
        warn(PROG, f"rank-1 identification off: the {len(files)} faces are of {len(set(labels))} identities in "
             f"{opt.identities}; it needs 2 or more, one of them with 2 faces")
    return None
