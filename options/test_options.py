"""Options of test.py (edit the defaults here)."""
import math
import os

from data.constants import BLUR_REACH, COMPRESSED_MATCH_SIGMA, DEGRADATIONS, JPEG_QUALITY, PAPER_BUNDLE, REAL_BUNDLE
from options.base_options import BaseOptions
from options.degradation import blur_sigma, jpeg_quality, noise_sigma
from utils import usable_cores

# SSIM's 11x11 window must fit in the HR face.
MIN_HR_CROP = 16
NO_CHECKPOINT_HELP = ("train one with `python train.py`, or pass --weight_path to the authors' "
                      "G_weight.ckpt or a generator.weights.h5 (README, 'Checkpoints')")


def weights_exist(path):
    """Whether anything is at `path`: a file or folder, or a checkpoint prefix (its .index file)."""
    return os.path.exists(path) or os.path.exists(path + ".index")


def default_weights(real_world):
    """The bundled generator test.py runs without --weight_path: the one fine-tuned on compressed, noisy
    inputs for photos (--real_world), the paper's recipe for aligned faces."""
    return REAL_BUNDLE if real_world else PAPER_BUNDLE


def weights_by_mode(weight_path, root=""):
    """(photo weights, aligned-face weights) of demo.py: `weight_path` for both when given, else test.py's
    default for each, under `root`."""
    if weight_path is not None:
        return weight_path, weight_path
    return os.path.join(root, default_weights(True)), os.path.join(root, default_weights(False))


class TestOptions(BaseOptions):
    description = "Super-resolve faces with a trained EIPNet generator and measure the results."

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.add_argument("--weight_path", default=None,
                            help="generator weights: a .weights.h5 file, a train.py checkpoint, the authors' "
                                 "G_weight.ckpt prefix, or a folder holding one of them (default: "
                                 f"{PAPER_BUNDLE} for aligned faces, {REAL_BUNDLE} with --real_world)")
        parser.add_argument("--image_save_path", default="result",
                            help="output folder; a relative path is placed under <checkpoint_path>/<save_path>. "
                                 "If it already holds results (summary.json or *_SR.png) and --overwrite is not "
                                 "given, the run goes to a new sub-folder run_2, run_3, ... of it")
        parser.add_argument("--overwrite", action="store_true",
                            help="write into --image_save_path even if it holds results of an earlier run "
                                 "(files of the same name are replaced, others are left as they are)")
        parser.add_argument("--lr_input", action="store_true",
                            help="the images are LR faces already (resized to crop_size/8 only if they are not); "
                                 "no HR, so no metrics")
        parser.add_argument("--num_figures", type=int, default=8,
                            help="how many images the comparison figure shows (0: no figure)")
        parser.add_argument("--no_fr", action="store_true",
                            help="skip FR-PSNR/FR-SSIM (PSNR/SSIM on the face box dlib finds on the HR; "
                                 "needs requirements-eval.txt)")
        parser.add_argument("--no_vif", action="store_true", help="skip VIF (pixel-domain, 4 scales)")
        parser.add_argument("--no_tar_algo", action="store_true",
                            help="skip TAR 'algorithm' (dlib face descriptors, distance <= 0.5 / 0.6; "
                                 "needs requirements-eval.txt)")
        parser.add_argument("--no_tar_net", action="store_true",
                            help="skip TAR 'network' (FaceNet embeddings, squared distance <= 0.02 / 0.04)")
        parser.add_argument("--no_brisque", action="store_true",
                            help="skip BRISQUE (no-reference, the LIVE-trained model; needs requirements-eval.txt)")
        parser.add_argument("--degradation", default="bilinear", choices=DEGRADATIONS,
                            help="the kernel that shrinks the HR face to the LR input: bilinear = the training "
                                 "recipe (three 2x INTER_LINEAR steps); area = one INTER_AREA shrink; bicubic = "
                                 f"antialiased bicubic; jpeg = bilinear, then JPEG quality {JPEG_QUALITY}")
        parser.add_argument("--blur_sigma", type=blur_sigma, default=0.0,
                            help="Gaussian blur of the HR face before the shrink, sigma in HR px (0: none)")
        parser.add_argument("--noise_sigma", type=noise_sigma, default=0.0,
                            help="Gaussian noise added to the 8-bit LR input, sigma in grey levels (0: none); "
                                 "drawn from each face's name, the same on every run")
        parser.add_argument("--jpeg_quality", type=jpeg_quality, default=None,
                            help="JPEG round trip (OpenCV) of the LR input at this quality, after the noise")
        parser.add_argument("--identities", default=None,
                            help="file of `relative/path.jpg IDENTITY` lines for rank-1 identification (default: "
                                 "each image's parent folder is its identity; rank-1 needs 2 or more identities)")
        parser.add_argument("--id_weights", default=None,
                            help="FaceNet weights (.weights.h5 or Keras 2 .h5) for TAR 'network'; default: the "
                                 "cached keras-facenet model, else `python -m scripts.get_facenet_weights`'s file")
        parser.add_argument("--int8", action="store_true",
                            help="run the int8 TFLite generator (made for CPUs with VNNI: docs/deployment.md), "
                                 "exported from --weight_path on first use and cached under ~/.cache/eipnet-tf2/int8 "
                                 "by the weights' content hash; its fixed batch size is --batchSize")
        parser.add_argument("--workers", type=int, default=None,
                            help="processes that compute the per-image metrics and write the images while the "
                                 "generator runs (default: every core); 1 computes them in order in the main "
                                 "process, with the same results")
        parser.add_argument("--raw_output", action="store_true",
                            help="write and score the generator's output as it is (the paper's protocol); by "
                                 "default each output is corrected to agree with its 16x16 input "
                                 "(data.degradation.match_input)")
        parser.add_argument("--match_sigma", type=float, default=None,
                            help="smooth that correction with a Gaussian of this sigma (input px) so a compressed "
                                 "or noisy input's blocks and noise are not put back (0: the full correction). "
                                 f"Default: {COMPRESSED_MATCH_SIGMA:g} when --jpeg_quality, --noise_sigma or "
                                 "--degradation jpeg make the inputs so, else 0; with --real_world, chosen per "
                                 f"photo: {COMPRESSED_MATCH_SIGMA:g} if it shows JPEG compression, else 0 (faces.jpeg)")
        parser.add_argument("--real_world", action="store_true",
                            help="the images are photos: find every face (MTCNN), super-resolve those the model "
                                 "can help and paste them back into the photo upscaled by --upscale (bicubic). "
                                 "Videos (.mp4 .mov .mkv .avi .webm) too, frame by frame with steady face tracks, "
                                 "written as <stem>_SR.mp4 with their sound; --test_path may name one photo or video")
        parser.add_argument("--detect_every", type=int, default=None,
                            help="with --real_world on a video: search for faces every this many frames and follow "
                                 "them between searches (default video.clip.DETECT_EVERY, docs/evaluation.md)")
        parser.add_argument("--upscale", type=int, default=8,
                            help="with --real_world: how many times larger the output photo is")
        parser.add_argument("--min_face", type=float, default=0,
                            help="with --real_world: faces whose detected box is smaller (px) are left as bicubic "
                                 "and counted (0: every face found is worth super-resolving, docs/evaluation.md)")
        parser.add_argument("--force_large", action="store_true",
                            help="with --real_world: also super-resolve faces whose frame is over "
                                 "faces.photo.MAX_FRAME photo px (96), which are otherwise left as bicubic "
                                 "(docs/evaluation.md)")
        return parser

    def validate(self, opt, parser):
        super().validate(opt, parser)
        if opt.num_figures < 0:
            parser.error(f"--num_figures must be >= 0, got {opt.num_figures}")
        if opt.real_world and opt.lr_input:
            parser.error("--real_world and --lr_input exclude each other: photos are not LR faces")
        if opt.real_world and opt.crop_size != 128:
            parser.error(f"--real_world aligns faces to the 128x128 training frame: --crop_size must be 128, "
                         f"got {opt.crop_size}")
        controls = [flag for flag, on in ((f"--degradation {opt.degradation}", opt.degradation != "bilinear"),
                                          ("--blur_sigma", opt.blur_sigma > 0), ("--noise_sigma", opt.noise_sigma > 0),
                                          ("--jpeg_quality", opt.jpeg_quality is not None)) if on]
        if controls and (opt.lr_input or opt.real_world):
            parser.error(f"{', '.join(controls)}: the LR face is made from an HR one; this does not apply to "
                         f"{'--lr_input' if opt.lr_input else '--real_world'}")
        if opt.degradation == "jpeg" and opt.jpeg_quality is not None:
            parser.error(f"--degradation jpeg is bilinear with --jpeg_quality {JPEG_QUALITY}: for another quality "
                         "give --jpeg_quality alone")
        if math.ceil(BLUR_REACH * opt.blur_sigma) >= opt.crop_size:  # the blur pads by reflection
            parser.error(f"--blur_sigma {opt.blur_sigma} reaches {BLUR_REACH} sigmas, beyond the "
                         f"{opt.crop_size} px face: give a sigma under {opt.crop_size / BLUR_REACH:g}")
        if opt.force_large and not opt.real_world:
            parser.error("--force_large is for --real_world photos: aligned faces are always super-resolved")
        if opt.int8 and opt.mixed_precision:
            parser.error("--int8 and --mixed_precision exclude each other: the int8 model has its own precision")
        if opt.workers is None:
            opt.workers = usable_cores()
        if opt.workers < 1:
            parser.error(f"--workers must be at least 1, got {opt.workers}")
        if opt.match_sigma is not None and (not opt.match_sigma >= 0 or opt.raw_output):   # NaN too
            parser.error(f"--match_sigma smooths the correction (>= 0) that --raw_output leaves out, got "
                         f"{opt.match_sigma}" + (" with --raw_output" if opt.raw_output else ""))
        compressed = opt.jpeg_quality is not None or opt.noise_sigma > 0 or opt.degradation == "jpeg"
        if opt.match_sigma is None and not opt.real_world:
            opt.match_sigma = COMPRESSED_MATCH_SIGMA if compressed and not opt.raw_output else 0.0
        if opt.upscale < 1:
            parser.error(f"--upscale must be at least 1, got {opt.upscale}")
        if opt.min_face < 0:
            parser.error(f"--min_face must be >= 0, got {opt.min_face}")
        if opt.identities is not None and not os.path.isfile(opt.identities):
            parser.error(f"--identities {opt.identities} is not a file")
        if opt.weight_path is None:
            opt.weight_path = default_weights(opt.real_world)
            if not weights_exist(opt.weight_path):
                parser.error(f"the bundled generator {opt.weight_path} is missing (git checkout -- "
                             f"{opt.weight_path} restores it); or pass --weight_path")
        if not weights_exist(opt.weight_path):
            parser.error(f"no checkpoint at --weight_path {opt.weight_path}; {NO_CHECKPOINT_HELP}")
        if opt.detect_every is not None and (not opt.real_world or opt.detect_every < 1):
            parser.error(f"--detect_every is for --real_world videos and must be >= 1, got {opt.detect_every}")
        if not os.path.isdir(opt.test_path) and not (opt.real_world and os.path.isfile(opt.test_path)):
            parser.error(f"--test_path {opt.test_path} is not a folder"
                         + ("" if opt.real_world or not os.path.isfile(opt.test_path) else
                            " (one photo or video file: with --real_world)"))
        if not opt.lr_input and opt.crop_size < MIN_HR_CROP:
            parser.error(f"--crop_size must be at least {MIN_HR_CROP} to measure SSIM on the HR face, "
                         f"got {opt.crop_size} (use --lr_input for LR faces without HR)")
