"""The training errors a user must fix; imports nothing heavy, so train.py and every part of training/ can."""


class TrainingError(RuntimeError):
    """A problem the user must fix; reported as one line."""


class NonFiniteLoss(TrainingError):
    """A step's loss was NaN or infinite (the message says where); the loop adds what is saved."""
