"""Types of the degradation controls of test.py and scripts.real_world_bench: a value out of range is
refused by argparse in one line. No TensorFlow."""
import argparse
import math

from data.constants import BLUR_SIGMA_MAX, JPEG_QUALITIES, NOISE_SIGMA_MAX


def _in_range(text, kind, low, high, unit):
    try:
        value = kind(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {low} to {high}{unit}, got {text}")
    return value


def blur_sigma(text):
    return _in_range(text, float, 0, BLUR_SIGMA_MAX, " HR px")


def noise_sigma(text):
    return _in_range(text, float, 0, NOISE_SIGMA_MAX, " grey levels")


def jpeg_quality(text):
    return _in_range(text, int, *JPEG_QUALITIES, "")
