"""Train EIPNet: generator + discriminator, the paper's composite loss, resumable.

    python train.py --train_path FACES --dataset_mode celeba --batchSize 16
    python train.py ... --continue_train          # resume exactly where it stopped
    python train.py ... --strategy mirrored       # every visible GPU (docs/distributed.md)

Everything goes to <checkpoint_path>/<save_path>/: ckpt/ (training checkpoints),
generator.weights.h5 (latest generator, for test.py), best/ (best validation
PSNR), logs/ (TensorBoard), loss_log.txt, validation.csv and validation.png,
loss_curves.png, opt.txt / opt.json.

The run itself is training/trainer.py's; this file parses the options, starts
TensorFlow and hands over.
"""
import sys

from options.train_options import TrainOptions
from training.errors import TrainingError
from training.run_folder import refuse_other_run
from utils import fail, start_tensorflow

PROG = "train.py"


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, train; returns the Trainer."""
    argv = sys.argv[1:] if argv is None else list(argv)
    opt = TrainOptions().parse(argv)  # --gpu_ids must reach CUDA before TensorFlow loads
    # Refused now, not after TensorFlow's seconds of loading. Under multi_worker only the
    # strategy knows which worker is the chief: Trainer checks then.
    if opt.strategy != "multi_worker":
        try:
            refuse_other_run(opt)
        except TrainingError as err:
            fail(PROG, str(err))
    start_tensorflow()
    from training.trainer import run

    return run(opt, argv)


if __name__ == "__main__":
    main()
