"""test.py's face mode, the stage after the faces: their means, identification and intervals, and the line
the run prints."""
from evaluation.faces import input_degradation
from metrics import brisque, intervals
from metrics.identification import per_face as identification_hits, summary as identification_summary
from utils import describe_device, finite_mean

METRIC_KEYS = ("psnr", "ssim", "psnr_y", "ssim_y", "bicubic_psnr", "bicubic_ssim")


def mean_keys(with_brisque):
    """The metrics summary.json averages."""
    return METRIC_KEYS + (brisque.KEYS if with_brisque else ())


def csv_columns(with_brisque, face_metrics):
    """The metrics columns of metrics.csv: the averaged ones, then the FaceMetrics' per-face ones."""
    return mean_keys(with_brisque) + (face_metrics.per_image_keys if face_metrics is not None else ())


def identities_and_hits(face_run, identity_of):
    """(identity of each row, rank-1 hits per probe) when identification runs (`identity_of` given), else
    (None, None)."""
    if identity_of is None or not face_run.rows:
        return None, None
    labels = [identity_of[p] for p in face_run.paths]
    return labels, identification_hits(face_run.rows, labels)


def summarise(opt, face_run, model, face_metrics, with_brisque, labels=None, hits=None):
    """summary.json's content for the faces of `face_run` (evaluation.faces.FaceRun) measured by `model`."""
    processed, generator_seconds = face_run.processed, face_run.generator_seconds
    summary = {"images": processed, "skipped": len(face_run.skipped),
               "images_per_s": processed / generator_seconds if generator_seconds > 0 else None,
               "faces_per_s": processed / face_run.wall_seconds, "workers": opt.workers,
               "device": describe_device(), "backend": model.name,
               "precision": model.precision, "weight_path": opt.weight_path,
               "mode": "lr_input" if opt.lr_input else "hr", "raw_output": opt.raw_output,
               "match_sigma": opt.match_sigma}
    if not opt.lr_input:
        how = input_degradation(opt)
        summary.update(degradation=opt.degradation, input=how.label(), kernel=how.kernel,
                       blur_sigma=how.blur_sigma, noise_sigma=how.noise_sigma, jpeg_quality=how.jpeg_quality)
    rows = face_run.rows
    if rows:
        means = {k: finite_mean([row[k] for row in rows]) for k in mean_keys(with_brisque)}
        summary.update({k: value for k, (value, _) in means.items()})
        summary["left_out_of_means"] = {k: n for k, (_, n) in means.items() if n}
        if face_metrics is not None:
            summary.update(face_metrics.summary(rows))
        if labels is not None:
            summary.update(identification_summary(hits, labels))
        summary["intervals"] = intervals.summary(rows, labels, hits)
    return summary


def summary_line(processed, out_dir, summary, new_run, skipped):
    def pair(key, fmt, unit=""):
        """'value (bicubic value)' of a summary key; n/a where the mean is undefined."""
        values = [summary[k] for k in (key, "bicubic_" + key)]
        return " (bicubic ".join("n/a" if v is None else f"{v:{fmt}}{unit}" for v in values) + ")"

    # TAR network stays in summary.json only: with the FaceNet weights one can get, it is 0 for every
    # method at the paper's thresholds (docs/evaluation.md, "How far to trust TAR")
    line = f"{processed} images -> {out_dir}"
    if new_run:
        line += " (new run folder: the output folder held results; --overwrite writes into it)"
    if "input" in summary:
        line += f" | input: {summary['input']}"
    for key, label, fmt, unit in (("psnr", "PSNR", ".2f", " dB"), ("ssim", "SSIM", ".4f", ""),
                                  ("fr_psnr", "FR-PSNR", ".2f", " dB"), ("vif", "VIF", ".3f", ""),
                                  ("tar_algo_0.6", "TAR algorithm@0.6", ".1f", "%"),
                                  ("brisque", "BRISQUE", ".1f", ""), ("rank1", "rank-1", ".1f", "%")):
        if key in summary:
            line += f" | {label} {pair(key, fmt, unit)}"
    left_out = summary.get("left_out_of_means")
    if left_out:
        line += " | left out of the means as inf/NaN: " + ", ".join(f"{k} {n}" for k, n in left_out.items())
    if skipped:
        line += f" | skipped {skipped}"
    return line
