"""One training run in three parts, driven by train.py's loop.

gan_step: the networks, optimizers and loss scaling, and one GAN update.
run_state: what resumes a run (iteration, epoch, data position, checkpoints).
run_folder: a new run never replaces another (imports no TensorFlow).
run_log: what a run tells people (loss_log.txt, TensorBoard, validation, best/, curves).
errors: TrainingError, the one-line problems a user must fix.
"""
