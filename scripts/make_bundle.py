"""Make a bundle like checkpoint/CelebA/ from a training run: the generator stored as float16, and the run's records.

    python -m scripts.make_bundle CKPT OUT [--records RUN_FOLDER] [--overwrite]

CKPT is anything models.load_generator reads (a train.py checkpoint prefix or folder, a
.weights.h5 file); OUT receives generator.weights.h5 (float16) and, from RUN_FOLDER, the
records (data.constants.BUNDLE_RECORDS). An OUT that already holds any of those files is
refused unless --overwrite is given; other files there (its README.md) are left as they are.
"""
import argparse
import os
import shutil

from data.constants import BUNDLE_RECORDS, GENERATOR_FILE
from utils import fail, start_tensorflow


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.make_bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt", help="generator weights: a train.py checkpoint (prefix or folder) or a .weights.h5 file")
    p.add_argument("out", help="bundle folder to write, e.g. checkpoint/CelebA-real")
    p.add_argument("--records", default=None,
                   help=f"run folder whose records ({', '.join(BUNDLE_RECORDS)}) are copied into OUT; "
                        "all must be there")
    p.add_argument("--overwrite", action="store_true", help="replace the generator and records already in OUT")
    args = p.parse_args(argv)
    if args.records is not None:
        missing = [name for name in BUNDLE_RECORDS if not os.path.isfile(os.path.join(args.records, name))]
        if missing:
            p.error(f"--records {args.records} lacks {', '.join(missing)}")
    present = [name for name in (GENERATOR_FILE,) + BUNDLE_RECORDS if os.path.exists(os.path.join(args.out, name))]
    if present and not args.overwrite:
        p.error(f"{args.out} already holds {', '.join(present)}; pass --overwrite to replace them")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, write the bundle; returns the paths written."""
    args = parse_args(argv)
    start_tensorflow()
    from models.checkpoint import load_generator, save_generator

    written = [os.path.join(args.out, GENERATOR_FILE)]
    save_generator(load_generator(args.ckpt), written[0], storage="float16")
    for name in BUNDLE_RECORDS if args.records is not None else ():
        written.append(shutil.copyfile(os.path.join(args.records, name), os.path.join(args.out, name)))
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:  # CheckpointError is a ValueError
        from models.checkpoint import first_lines

        fail("make_bundle", first_lines(err, 1))
