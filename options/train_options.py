"""Options of train.py (edit the defaults here).

Schedule defaults follow the paper: Adam 1e-4 for both networks, the
adversarial term off (beta = 0) for the first 1.2M / 1.32M = 10/11 of the
generator iterations and --ad_r after that (`--gan_start_iter -1` places the
switch there for whatever length --niter / --epoch give).
"""
import os

from data.constants import BLUR_SIGMA_MAX, JPEG_QUALITIES, NOISE_SIGMA_MAX
from data.images import is_local, is_shard_path
from options.base_options import BaseOptions

REAL_OPTIONS = ("real_clean", "real_blur", "real_blur_sigma", "real_noise", "real_noise_sigma", "real_jpeg",
                "real_jpeg_quality")
PAPER_GAN_START = 1.2 / 1.32

D_BETAS = {"paper": (0.5, 0.9), "code": (0.9, 0.999)}
# not test.py's CelebA: that folder holds the bundled generator, which a first run must not replace
DEFAULT_SAVE_PATH = "experiment"
STRATEGIES = ("default", "mirrored", "multi_worker")


def _value(option):
    """An option's value comparable with its default: nargs=2 values parse to lists, defaults are tuples."""
    return tuple(option) if isinstance(option, (list, tuple)) else option


class TrainOptions(BaseOptions):
    description = "Train EIPNet (generator + discriminator) on a folder of faces."

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.set_defaults(save_path=DEFAULT_SAVE_PATH)
        # the released code's flags
        parser.add_argument("--display_epoch_freq", type=int, default=1,
                            help="write an image grid to TensorBoard every N epochs (0: never)")
        parser.add_argument("--print_epoch_freq", type=int, default=1,
                            help="write a loss_log.txt line at the end of every N epochs (0: never)")
        parser.add_argument("--save_epoch_freq", type=int, default=1,
                            help="save a checkpoint at the end of every N epochs (0: never)")
        parser.add_argument("--learning_rate", type=float, default=1e-4, help="Adam learning rate of G and D")
        parser.add_argument("--ad_r", type=float, default=5e-3,
                            help="adversarial weight beta of the GAN phase (eq. 11)")
        parser.add_argument("--epoch", type=int, default=200,
                            help="epochs to train (an epoch: every training image once); --niter overrides it")
        parser.add_argument("--D_steps_per_G", type=int, default=1,
                            help="discriminator updates per generator update in the GAN phase")
        parser.add_argument("--continue_train", action="store_true",
                            help="resume the run in <checkpoint_path>/<save_path> where it stopped")
        parser.add_argument("--overwrite", action="store_true",
                            help="start a new run in a folder that holds another: delete that run's generator, "
                                 "checkpoints and logs first")
        parser.add_argument("--which_epoch", type=int, default=None,
                            help="with --continue_train: resume from the checkpoint saved at the end of this epoch")
        parser.add_argument("--max_to_keep", type=int, default=10, help="training checkpoints kept on disk")
        parser.add_argument("--lambda_edge", type=float, default=0.3, help="weight of the edge loss L_e")
        parser.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
        # added by this port
        parser.add_argument("--lambda_yuv", type=float, default=1.0,
                            help="weight of the luminance-chrominance loss L_lc (the code used 1)")
        parser.add_argument("--lambda_id", type=float, default=15.0,
                            help="weight of the FaceNet identity loss L_id (0: off, no FaceNet needed; how it was "
                                 "chosen: docs/training.md)")
        parser.add_argument("--id_weights", default=None,
                            help="FaceNet weights (.h5); default: keras-facenet's cache, then the file "
                                 "`python -m scripts.get_facenet_weights` writes")
        parser.add_argument("--niter", type=int, default=0,
                            help="generator iterations to train in total (0: --epoch epochs)")
        parser.add_argument("--gan_start_iter", type=int, default=-1,
                            help="iteration at which the adversarial term switches on "
                                 "(-1: at 1.2/1.32 of the run, the paper's schedule)")
        parser.add_argument("--d_betas", choices=sorted(D_BETAS), default="paper",
                            help="discriminator Adam betas: paper (0.5, 0.9) or code (0.9, 0.999)")
        parser.add_argument("--which_iter", type=int, default=None,
                            help="with --continue_train: resume from the checkpoint of this iteration")
        parser.add_argument("--init_weights", default=None,
                            help="start the generator from these weights (any format load_generator reads, "
                                 "e.g. the authors' G_weight.ckpt) without resuming a run")
        parser.add_argument("--print_iter_freq", type=int, default=100,
                            help="loss_log.txt line and TensorBoard scalars every N iterations")
        parser.add_argument("--display_iter_freq", type=int, default=1000,
                            help="TensorBoard image grid every N iterations (0: never)")
        parser.add_argument("--save_iter_freq", type=int, default=1000,
                            help="checkpoint every N iterations (a run killed loses at most this many)")
        parser.add_argument("--val_path", default=None,
                            help="folder of validation faces (default: --test_path); faces of people who are not "
                                 "in --train_path make validation measure what users get on strangers")
        parser.add_argument("--val_iter_freq", type=int, default=1000,
                            help="validate on --val_path every N iterations (0: only at the end)")
        parser.add_argument("--val_images", type=int, default=200,
                            help="how many --val_path images validation uses (0: all)")
        parser.add_argument("--seed", type=int, default=0,
                            help="seed of weight init, shuffling and augmentation (same seed, same run)")
        parser.add_argument("--no_rotate", action="store_true", help="no random 90/180/270 degree rotations")
        parser.add_argument("--degradation_recipe", choices=("paper", "real"), default="paper",
                            help="how a training HR face becomes its 16x16 input: paper = the released code's "
                                 "bilinear pyramid; real = the --real_* draws below, for compressed, noisy "
                                 "inputs (docs/training.md#a-recipe-for-real-inputs)")
        parser.add_argument("--real_clean", type=float, default=0.25,
                            help="real recipe: share of samples given the paper's degradation alone")
        parser.add_argument("--real_blur", type=float, default=0.2, help="real recipe: probability of a blur")
        parser.add_argument("--real_blur_sigma", type=float, nargs=2, default=(0.2, 1.5), metavar=("LOW", "HIGH"),
                            help="real recipe: range of the Gaussian blur's sigma, in HR pixels")
        parser.add_argument("--real_noise", type=float, default=0.3, help="real recipe: probability of noise")
        parser.add_argument("--real_noise_sigma", type=float, nargs=2, default=(0.0, 5.0), metavar=("LOW", "HIGH"),
                            help="real recipe: range of the Gaussian noise's sigma on the 16x16 input, grey levels")
        parser.add_argument("--real_jpeg", type=float, default=0.8,
                            help="real recipe: probability of a JPEG round trip of the 16x16 input")
        parser.add_argument("--real_jpeg_quality", type=int, nargs=2, default=(30, 95), metavar=("LOW", "HIGH"),
                            help="real recipe: range of the JPEG quality (integers, both included)")
        parser.add_argument("--canny_low", type=float, default=50, help="Canny low threshold of the edge targets")
        parser.add_argument("--canny_high", type=float, default=255, help="Canny high threshold")
        parser.add_argument("--canny_adaptive", action="store_true",
                            help="per-image Canny thresholds of the paper (eq. 1-2) instead of low/high")
        parser.add_argument("--partition_file", default=None,
                            help="CelebA list_eval_partition.txt: train only on its partition 0")
        parser.add_argument("--cache_memory_mb", type=float, default=4096,
                            help="keep decoded 128x128 faces in memory when they fit in this budget (0: never)")
        parser.add_argument("--skip_nan", action="store_true",
                            help="skip a batch whose losses are NaN/Inf instead of stopping the run")
        parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                            help="'default': one device; 'mirrored': every GPU --gpu_ids makes visible; "
                                 "'multi_worker': every GPU of the machines listed in TF_CONFIG (docs/distributed.md). "
                                 "--batchSize is the global batch and must divide by the number of GPUs")
        return parser

    def validate(self, opt, parser):
        super().validate(opt, parser)
        for name in ("learning_rate",):
            if getattr(opt, name) <= 0:
                parser.error(f"--{name} must be positive, got {getattr(opt, name)}")
        for name in ("ad_r", "lambda_edge", "lambda_yuv", "lambda_id", "cache_memory_mb"):
            if getattr(opt, name) < 0:
                parser.error(f"--{name} must be >= 0, got {getattr(opt, name)}")
        for name in ("epoch", "D_steps_per_G", "max_to_keep", "print_iter_freq"):
            if getattr(opt, name) < 1:
                parser.error(f"--{name} must be at least 1, got {getattr(opt, name)}")
        for name in ("niter", "display_epoch_freq", "print_epoch_freq", "save_epoch_freq", "display_iter_freq",
                     "save_iter_freq", "val_iter_freq", "val_images", "seed"):
            if getattr(opt, name) < 0:
                parser.error(f"--{name} must be >= 0, got {getattr(opt, name)}")
        if opt.gan_start_iter < -1:
            parser.error(f"--gan_start_iter must be -1 (paper schedule) or >= 0, got {opt.gan_start_iter}")
        if (opt.which_epoch is not None or opt.which_iter is not None) and not opt.continue_train:
            parser.error("--which_epoch / --which_iter pick a checkpoint to resume: add --continue_train")
        if opt.which_epoch is not None and opt.which_iter is not None:
            parser.error("give --which_epoch or --which_iter, not both")
        if opt.init_weights and opt.continue_train:
            parser.error("--init_weights starts a new run; --continue_train resumes one: give only one")
        # other filesystems and shard globs are checked by the pipeline, once TensorFlow (their reader) is loaded
        if is_local(opt.train_path) and not is_shard_path(opt.train_path) and not os.path.isdir(opt.train_path):
            parser.error(f"--train_path {opt.train_path} is not a folder")
        if opt.val_path is not None and not os.path.isdir(opt.val_path):
            parser.error(f"--val_path {opt.val_path} is not a folder")
        if opt.overwrite and opt.continue_train:
            parser.error("--overwrite deletes the run that --continue_train would resume: give only one")
        run_folder = os.path.join(opt.checkpoint_path, opt.save_path)
        if opt.overwrite and opt.init_weights and _inside(opt.init_weights, run_folder):
            parser.error(f"--overwrite would delete --init_weights {opt.init_weights}: copy the weights elsewhere "
                         "or train into another --save_path")
        for name in ("real_clean", "real_blur", "real_noise", "real_jpeg"):
            if not 0 <= getattr(opt, name) <= 1:
                parser.error(f"--{name} is a probability: 0 to 1, got {getattr(opt, name)}")
        for name, low, high in (("real_blur_sigma", 0, BLUR_SIGMA_MAX), ("real_noise_sigma", 0, NOISE_SIGMA_MAX),
                                ("real_jpeg_quality", *JPEG_QUALITIES)):
            lo, hi = getattr(opt, name)
            if not low <= lo <= hi <= high:
                parser.error(f"--{name} needs {low} <= LOW <= HIGH <= {high}, got {lo} {hi}")
        changed = [name for name in REAL_OPTIONS if _value(getattr(opt, name)) != _value(parser.get_default(name))]
        if changed and opt.degradation_recipe != "real":
            parser.error(f"--{', --'.join(changed)} set the real-input recipe: add --degradation_recipe real")
        if opt.canny_low > opt.canny_high:
            parser.error(f"--canny_low ({opt.canny_low}) must not exceed --canny_high ({opt.canny_high})")


def _inside(path, folder):
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder
