"""Options of test.py (edit the defaults here)."""
from options.base_options import BaseOptions


class TestOptions(BaseOptions):
    description = "Super-resolve faces with a trained EIPNet generator and measure the results."

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.add_argument("--weight_path", default="checkpoint/CelebA",
                            help="generator weights: a .weights.h5 file, a train.py checkpoint, the authors' "
                                 "G_weight.ckpt prefix, or a folder holding one of them")
        parser.add_argument("--image_save_path", default="result",
                            help="output folder; a relative path is placed under <checkpoint_path>/<save_path>")
        parser.add_argument("--lr_input", action="store_true",
                            help="the images are LR faces already (resized to crop_size/8 only if they are not); "
                                 "no HR, so no metrics")
        parser.add_argument("--num_figures", type=int, default=8,
                            help="how many images the comparison figure shows (0: no figure)")
        return parser

    def validate(self, opt, parser):
        super().validate(opt, parser)
        if opt.num_figures < 0:
            parser.error(f"--num_figures must be >= 0, got {opt.num_figures}")
