"""The run folder's claim: a new run never replaces another one unless told to. Imports no TensorFlow,
so train.py refuses before loading it."""
import os
import shutil

from training.errors import TrainingError

# what a run writes in its folder: finding any of them means the folder holds a run
RUN_OUTPUTS = ("generator.weights.h5", "ckpt", "best", "logs", "loss_log.txt", "validation.csv", "validation.png",
               "loss_curves.png", "opt.txt", "opt.json")


def refuse_other_run(opt, chief=True):
    """The run outputs in opt.experiment_dir; raises TrainingError when a new run would replace them.

    --continue_train resumes the run there and --overwrite replaces it, so both may write into it.
    Other workers than the chief look for checkpoints only: the chief writes its logs there as soon
    as it starts, checkpoints much later.
    """
    folder = opt.experiment_dir
    found = [name for name in (RUN_OUTPUTS if chief else ("ckpt",)) if os.path.lexists(os.path.join(folder, name))]
    if found and not (opt.continue_train or opt.overwrite):
        raise TrainingError(f"{folder} already holds a run ({', '.join(found)}): resume it with --continue_train, "
                            f"train into a new --save_path, or replace it with --overwrite")
    return found


def claim_run_folder(opt, chief=True):
    """Refuse a new run in a folder holding another run's outputs; with --overwrite the chief deletes them."""
    found = refuse_other_run(opt, chief)
    if not found or opt.continue_train or not chief:
        return
    for name in found:
        path = os.path.join(opt.experiment_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
