"""What each part of a run takes from train.py's options, as data.pipeline.DataConfig does for the pipeline.

Each is built once by `from_options`; no defaults and no checks here: options/ holds both.
"""
from dataclasses import dataclass

from losses.composite import LossWeights
from options.train_options import D_BETAS


@dataclass(frozen=True)
class StepConfig:
    """The GAN step's: networks, optimizers and the update."""
    lr_size: int
    crop_size: int
    output_nc: int
    batch_size: int  # global: each replica's losses are averaged over it
    learning_rate: float
    d_betas: tuple[float, float]  # the discriminator's Adam (beta_1, beta_2)
    d_steps_per_g: int
    mixed_precision: bool
    skip_nan: bool
    id_weights: str | None  # FaceNet weights of the identity loss (None: the default file)
    pre_gan_weights: LossWeights
    gan_weights: LossWeights

    @classmethod
    def from_options(cls, opt):
        """From TrainOptions().parse()."""
        return cls(lr_size=opt.lr_size, crop_size=opt.crop_size, output_nc=opt.output_nc, batch_size=opt.batchSize,
                   learning_rate=opt.learning_rate, d_betas=D_BETAS[opt.d_betas], d_steps_per_g=opt.D_steps_per_G,
                   mixed_precision=opt.mixed_precision, skip_nan=opt.skip_nan, id_weights=opt.id_weights,
                   pre_gan_weights=LossWeights.from_options(opt, False),
                   gan_weights=LossWeights.from_options(opt, True))


@dataclass(frozen=True)
class StateConfig:
    """The run state's: where checkpoints go and what a run starts from."""
    folder: str  # the run's folder (opt.experiment_dir)
    max_to_keep: int
    continue_train: bool
    which_iter: int | None
    which_epoch: int | None
    init_weights: str | None  # a generator's weights to start a new run from (None: random)
    lr_size: int
    output_nc: int
    learning_rate: float

    @classmethod
    def from_options(cls, opt):
        """From TrainOptions().parse()."""
        return cls(folder=opt.experiment_dir, max_to_keep=opt.max_to_keep, continue_train=opt.continue_train,
                   which_iter=opt.which_iter, which_epoch=opt.which_epoch, init_weights=opt.init_weights,
                   lr_size=opt.lr_size, output_nc=opt.output_nc, learning_rate=opt.learning_rate)


@dataclass(frozen=True)
class LogConfig:
    """The run log's: its folder and the validation set."""
    folder: str  # the run's folder (opt.experiment_dir)
    val_path: str  # --val_path, else --test_path
    val_images: int | None  # None: every face of val_path
    lr_size: int
    learning_rate: float

    @classmethod
    def from_options(cls, opt):
        """From TrainOptions().parse()."""
        return cls(folder=opt.experiment_dir, val_path=opt.val_path or opt.test_path,
                   val_images=opt.val_images or None, lr_size=opt.lr_size, learning_rate=opt.learning_rate)
