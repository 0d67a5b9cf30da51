"""Write a folder of training faces as TFRecord shards for `python train.py --train_path 'OUT_PREFIX-*.tfrecord'`.

    python -m scripts.make_shards FOLDER OUT_PREFIX [--shard_mb 100]

writes OUT_PREFIX-00000-of-0000N.tfrecord, ...: every readable image under
FOLDER (recursively, sorted), its file's bytes unchanged and its path relative
to FOLDER, about --shard_mb MiB per shard. FOLDER and OUT_PREFIX may be on any
filesystem tf.io.gfile reads (gs://, s3://, ram://). Each shard appears under
its name only once complete; existing shards of OUT_PREFIX are never
overwritten. Unreadable files are listed and left out.
"""
import argparse

from data.constants import SHARD_MB
from utils import fail, start_tensorflow, warn

PROG = "make_shards"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m scripts.make_shards", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="folder of face images (searched recursively)")
    p.add_argument("out_prefix", help="shard path prefix, e.g. shards/faces or gs://bucket/faces")
    p.add_argument("--shard_mb", type=float, default=SHARD_MB, help="target shard size in MiB")
    args = p.parse_args(argv)
    if args.shard_mb <= 0:
        p.error(f"--shard_mb must be positive, got {args.shard_mb}")
    return args


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, write the shards; returns their paths.

    A bad input raises ValueError or OSError.
    """
    args = parse_args(argv)
    start_tensorflow()
    from data.storage import write_shards

    shards, bad = write_shards(args.folder, args.out_prefix, args.shard_mb)
    for path, reason in bad:
        warn(PROG, f"left out unreadable {path}: {reason}")
    print(f"wrote {len(shards)} shard(s): {shards[0]} ...")
    return shards


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as err:
        fail(PROG, str(err))
