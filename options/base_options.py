"""Options shared by train.py and test.py.

Edit the defaults here (or pass flags). Flag names are the released code's.
This module imports no TensorFlow: `--gpu_ids` must take effect before it loads.
"""
import argparse
import json
import os

from data.constants import DATASET_MODES, SCALE


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, except for defaults that mean "not given" (None,
    a flag's False): their help says what happens without them."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class BaseOptions:
    description = "EIPNet"

    def initialize(self, parser):
        parser.add_argument("--save_path", default="CelebA",
                            help="experiment name: results and checkpoints go to <checkpoint_path>/<save_path>")
        parser.add_argument("--gpu_ids", default="0",
                            help="GPUs made visible, e.g. 0 or 0,1,2; -1 runs on the CPU (sets CUDA_VISIBLE_DEVICES)")
        parser.add_argument("--checkpoint_path", default="checkpoint", help="root folder of all experiments")
        parser.add_argument("--train_path", default="datasets/train",
                            help="training images: a folder (searched recursively), TFRecord shards of "
                                 "`python -m scripts.make_shards` (a file or a glob, e.g. 'shards/faces-*.tfrecord'), "
                                 "on any filesystem tf.io.gfile reads (gs://, s3://, ram://)")
        parser.add_argument("--test_path", default="datasets/test", help="folder of test images (searched recursively)")
        parser.add_argument("--batchSize", type=int, default=1, help="images per batch")
        parser.add_argument("--load_size", type=int, default=128,
                            help="side the square face crop is resized to before cropping crop_size")
        parser.add_argument("--crop_size", type=int, default=128,
                            help="HR side fed to the networks (a multiple of 8; the LR input is crop_size/8): "
                                 "random crop of the load_size face in training, centre crop in testing")
        parser.add_argument("--output_nc", type=int, default=3, choices=(3,),
                            help="output channels of the generator (RGB; the YUV loss and metrics need 3)")
        parser.add_argument("--mixed_precision", action="store_true",
                            help="float16 compute (Keras mixed_float16) with float32 weights, outputs and losses; "
                                 "in training with dynamic loss scaling. For GPUs with tensor cores: very slow "
                                 "on the CPU")
        parser.add_argument("--dataset_mode", default="folder", choices=DATASET_MODES,
                            help="face framing: folder = largest centred square; celeba = the paper's 178x178 "
                                 "centre crop of aligned CelebA; vggface2 = centre crop of 0.7 x min(h, w)")
        return parser

    def parser(self):
        parser = argparse.ArgumentParser(description=self.description,
                                         formatter_class=DefaultsHelpFormatter)
        return self.initialize(parser)

    def validate(self, opt, parser):
        if opt.batchSize < 1:
            parser.error(f"--batchSize must be at least 1, got {opt.batchSize}")
        if opt.crop_size < SCALE or opt.crop_size % SCALE:
            parser.error(f"--crop_size must be a positive multiple of {SCALE}, got {opt.crop_size}")
        if opt.load_size < opt.crop_size:
            parser.error(f"--load_size ({opt.load_size}) must be at least --crop_size ({opt.crop_size})")
        gpu_ids = [s.strip() for s in str(opt.gpu_ids).split(",") if s.strip()]
        if not gpu_ids or not all(s.lstrip("-").isdigit() for s in gpu_ids):
            parser.error(f"--gpu_ids must be a comma-separated list of GPU numbers or -1, got {opt.gpu_ids!r}")

    def parse(self, args=None):
        parser = self.parser()
        opt = parser.parse_args(args)
        self.validate(opt, parser)
        opt.lr_size = opt.crop_size // SCALE
        opt.experiment_dir = os.path.join(opt.checkpoint_path, opt.save_path)
        apply_gpu_ids(opt.gpu_ids)
        return opt


def apply_gpu_ids(gpu_ids):
    """Make only the listed GPUs visible; -1 hides them all."""
    ids = [s.strip() for s in str(gpu_ids).split(",") if s.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1" if any(int(i) < 0 for i in ids) else ",".join(ids)


def save_options(opt, folder, name="opt"):
    """Write <folder>/opt.txt (readable) and opt.json (machine-readable); never a pickle."""
    os.makedirs(folder, exist_ok=True)
    values = {k: v for k, v in sorted(vars(opt).items())}
    with open(os.path.join(folder, name + ".txt"), "w", encoding="utf-8") as f:
        f.write("------------ Options -------------\n")
        for key, value in values.items():
            f.write(f"{key}: {value}\n")
        f.write("-------------- End ---------------\n")
    with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True)
