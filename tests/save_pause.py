"""train.py with each checkpoint save held halfway, for tests/test_crash.py:

    python tests/save_pause.py FOLDER [train.py's arguments]

The checkpoint is written and recorded, the generator not yet exported, when the run writes
FOLDER/saving-N and waits until that file goes: a test kills or signals the run at that known
point instead of racing a save with a timer. The hook is put in here, by wrapping
tf.train.CheckpointManager.save, not in the product code.
"""
import os
import runpy
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hold_saves(tf, folder):
    save = tf.train.CheckpointManager.save

    def held(manager, checkpoint_number=None, **kwargs):
        path = save(manager, checkpoint_number=checkpoint_number, **kwargs)
        marker = os.path.join(folder, f"saving-{checkpoint_number}")
        open(marker, "w").close()
        while os.path.exists(marker):
            time.sleep(0.01)
        return path

    tf.train.CheckpointManager.save = held


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    from utils import start_tensorflow

    folder, *argv = sys.argv[1:]
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # before TensorFlow loads, as train.py's --gpu_ids -1 would
    hold_saves(start_tensorflow(), folder)
    sys.argv = [os.path.join(ROOT, "train.py"), *argv]
    runpy.run_path(sys.argv[0], run_name="__main__")
