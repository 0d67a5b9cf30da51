"""The run log: what a run tells people, all written by the chief into the run folder.

loss_log.txt (the released code's line format), TensorBoard
scalars and image grids (logs/), validation.csv with validation.png, the best
validation generator (best/), loss_curves.png. Drawing is visualizer.py's.
"""
import csv
import json
import os
import re

import numpy as np
import tensorflow as tf

from data.canny import canny_targets
from data.images import upscale_bicubic
from data.pipeline import load_eval_set
from metrics.quality import quality
from models import save_generator
from training.errors import TrainingError
from utils import atomic_path, atomic_write_text, mean_rows, to_uint8
from visualizer import image_grid, loss_curves, validation_curve

# loss_log.txt fields: the released code's, in its order, then the identity term it lacked
LOG_FIELDS = (("G_total", "G_total"), ("MSE", "L_rgb"), ("EDGE", "L_e"), ("YUV", "L_lc"),
              ("G_GAN", "L_ad"), ("D_GAN", "D_loss"), ("ID", "L_id"))
VAL_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y")
GRID_IMAGES = 4
VAL_BATCH = 16
# A new run's generator starts far from a face: its first validations are under bicubic (the figures: docs).
EARLY_NOTE = ("under bicubic, as a new run is for its first few hundred iterations: normal so early "
              "(docs/training.md, 'Validation early in a run')")


def parse_loss_log(path):
    """{field: [(iteration, value)]} of a loss_log.txt."""
    history = {}
    if not os.path.exists(path):
        return history
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"\(epoch: (\d+), iters: (\d+)\)(.*)", line)
            if not match:
                continue
            iteration = int(match.group(2))
            for name, value in re.findall(r"(\w+): (\S+)", match.group(3)):
                history.setdefault(name, []).append((iteration, float(value)))
    return history


class RunLog:
    """The chief's record of a run of `generator`: losses, TensorBoard, validation and the best generator."""

    def __init__(self, config, data_config, generator):
        """`config`: a training.config.LogConfig; `data_config`: the pipeline's (framing, crop, Canny)."""
        self.config = config
        self.data_config = data_config
        self.generator = generator
        self.folder = config.folder
        self.writer = None
        self.best_psnr = float("-inf")
        self.last_logged = None

    def open(self):
        """Start writing (after the run state started: a resume has cut the logs back to its checkpoint)."""
        self.writer = tf.summary.create_file_writer(os.path.join(self.folder, "logs"))
        best = os.path.join(self.folder, "best", "best.json")
        if os.path.exists(best):  # a resumed run's: a new run's folder holds none
            with open(best, encoding="utf-8") as f:
                self.best_psnr = json.load(f)["psnr"]
        self.load_validation()

    def flush(self):
        self.writer.flush()

    # -- losses ------------------------------------------------------------------
    def write_loss_line(self, logs, iteration, epoch):
        """loss_log.txt's line of `iteration` in `epoch` (1-based), once per iteration."""
        if iteration == self.last_logged:
            return
        self.last_logged = iteration
        line = (f"(epoch: {epoch}, iters: {iteration}) "
                + " ".join(f"{name}: {logs.get(key, 0.0):.4f}" for name, key in LOG_FIELDS))
        with open(os.path.join(self.folder, "loss_log.txt"), "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def write_scalars(self, logs, iteration):
        with self.writer.as_default(step=iteration):
            for key, value in logs.items():
                if value == value:  # D accuracy is NaN before the GAN phase
                    tf.summary.scalar(f"loss/{key}" if key.startswith(("L_", "G_", "D_loss")) else key, value)
            tf.summary.scalar("learning_rate", float(self.config.learning_rate))

    def write_loss_curves(self):
        history = parse_loss_log(os.path.join(self.folder, "loss_log.txt"))
        if history:
            loss_curves(history, os.path.join(self.folder, "loss_curves.png"))

    # -- validation -------------------------------------------------------------
    @tf.function
    def predict(self, lr):
        return self.generator(lr, training=False)

    def load_validation(self):
        config = self.config
        try:
            names, hr, lr = load_eval_set(self.data_config, config.val_path, limit=config.val_images)
        except ValueError as err:  # no faces to validate on: the user's folder to fix
            raise TrainingError(f"validation: {err}") from err
        self.val_hr, self.val_lr = hr, lr
        bicubic = [upscale_bicubic(face.astype("uint8"), self.data_config.crop_size // config.lr_size) for face in lr]
        self.val_bicubic = mean_rows([quality(b, h) for b, h in zip(bicubic, hr)], VAL_KEYS)
        self.val_names = names

    def super_resolve_validation(self):
        outputs = [self.predict(tf.constant(self.val_lr[i:i + VAL_BATCH]))
                   for i in range(0, len(self.val_lr), VAL_BATCH)]
        return [np.concatenate([o[k].numpy() for o in outputs]) for k in range(4)]

    def validate(self, iteration):
        """Mean PSNR/SSIM on the validation faces at `iteration`; keeps the best generator."""
        sr, *_ = self.super_resolve_validation()
        scores = mean_rows([quality(to_uint8(s), h) for s, h in zip(sr, self.val_hr)], VAL_KEYS)
        path = os.path.join(self.folder, "validation.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(("iteration",) + VAL_KEYS + tuple(f"bicubic_{k}" for k in VAL_KEYS))
            writer.writerow([iteration] + [f"{scores[k]:.4f}" for k in VAL_KEYS]
                            + [f"{self.val_bicubic[k]:.4f}" for k in VAL_KEYS])
        validation_curve(path, os.path.join(self.folder, "validation.png"))
        with self.writer.as_default(step=iteration):
            for k in VAL_KEYS:
                tf.summary.scalar(f"val/{k}", scores[k])
        if scores["psnr"] > self.best_psnr:
            self.best_psnr = scores["psnr"]
            best = os.path.join(self.folder, "best")
            with atomic_path(os.path.join(best, "generator.weights.h5"), suffix=".weights.h5") as tmp:
                save_generator(self.generator, tmp)
            atomic_write_text(os.path.join(best, "best.json"), json.dumps({"iteration": iteration, **scores}, indent=2))
        return scores

    def validation_text(self, scores):
        """'validation PSNR .. dB (bicubic ..), SSIM .. (bicubic ..)' of `scores`; under bicubic's PSNR, why."""
        bicubic = self.val_bicubic
        text = (f"validation PSNR {scores['psnr']:.2f} dB (bicubic {bicubic['psnr']:.2f}), "
                f"SSIM {scores['ssim']:.4f} (bicubic {bicubic['ssim']:.4f})")
        return text + (f" - {EARLY_NOTE}" if scores["psnr"] < bicubic["psnr"] else "")

    def write_grid(self, iteration):
        """LR (bicubic) | SR | HR | predicted edge 128 | Canny 128 of the first validation faces."""
        data = self.data_config
        count = min(GRID_IMAGES, len(self.val_lr))
        sr, _, _, edge = [o.numpy() for o in self.predict(tf.constant(self.val_lr[:count]))]
        canny = canny_targets(self.val_hr[:count], data.canny_low, data.canny_high, data.canny_adaptive)[-1].numpy()
        scale = data.crop_size // self.config.lr_size
        gray = lambda m: np.repeat(to_uint8(m), 3, axis=-1)  # noqa: E731
        rows = [[upscale_bicubic(self.val_lr[i].astype(np.uint8), scale), to_uint8(sr[i]), self.val_hr[i],
                 gray(edge[i]), gray(canny[i])] for i in range(count)]
        with self.writer.as_default(step=iteration):
            tf.summary.image("LR | SR | HR | edge | Canny", image_grid(rows)[None], max_outputs=1)
