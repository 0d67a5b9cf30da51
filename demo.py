"""A local web page for EIPNet: upload a photo or a face crop, compare bicubic and EIPNet, download the PNG;
or upload a short video and get it back with its faces super-resolved.

    pip install -r requirements-demo.txt && python demo.py     # http://127.0.0.1:7860
    python demo.py --host 0.0.0.0 --port 8080 --weight_path path/to/G_weight.ckpt   # one model, both modes

Two modes for photos and one for videos, each the same functions test.py runs:
- "aligned face": test.py's default path (largest centred square -> 128x128,
  the training degradation to 16x16, the generator: its default, checkpoint/CelebA);
  a 16x16 upload is taken as the LR face itself (test.py --lr_input).
- "photo": test.py --real_world for one photo, with its default generator (checkpoint/CelebA-real,
  fine-tuned on compressed, noisy inputs), through
  deploy.web_demo.enhance_photo, the one adapter between this page and the
  real-photo pipeline. When it
  super-resolves no face (a portrait's face is far larger than the model's
  16 px input), the page says why and shows instead what EIPNet does to the
  largest face shrunk to 16x16: the face in the real-photo path's 128 frame,
  then the aligned-face path (`faces.align.face_in_frame`).
- "video" (a tab of its own): test.py --real_world for one video (video.clip), with the photo mode's
  generator; an H.264 MP4 with the input's sound, played in the page and offered for download.

The page never talks to anything but its own server: Gradio's analytics,
version check and share links are off, and its fonts are served locally.
The page is deploy/web_demo.py's; this file parses the options, starts
TensorFlow and serves it.
"""
import argparse
import os

from options.base_options import DefaultsHelpFormatter
from options.test_options import NO_CHECKPOINT_HELP, default_weights, weights_by_mode, weights_exist
from utils import start_tensorflow

ROOT = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="EIPNet in a local web page (Gradio).",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on; 0.0.0.0 makes the page reachable from other machines")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    parser.add_argument("--weight_path", default=None,
                        help="generator weights for both modes: a .weights.h5 file, a train.py checkpoint, the "
                             "authors' G_weight.ckpt prefix, an export, or a folder holding one of them (default: "
                             f"test.py's, {default_weights(True)} for 'photo' and {default_weights(False)} for "
                             "'aligned face')")
    opt = parser.parse_args(argv)
    if not 0 < opt.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {opt.port}")
    if opt.weight_path is not None and not weights_exist(opt.weight_path):
        parser.error(f"no checkpoint at --weight_path {opt.weight_path}; {NO_CHECKPOINT_HELP}")
    opt.photo_weights, opt.face_weights = weights_by_mode(opt.weight_path, ROOT)
    for path in (opt.photo_weights, opt.face_weights):
        if not weights_exist(path):
            parser.error(f"the bundled generator {path} is missing (git checkout -- {os.path.relpath(path, ROOT)} "
                         "restores it); or pass --weight_path")
    return opt



def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, serve the page until Ctrl-C."""
    opt = parse_args(argv)
    # Before gradio (and huggingface_hub, which it imports) reads them: no telemetry, no version check.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    start_tensorflow()
    from deploy.web_demo import serve

    serve(opt)


if __name__ == "__main__":
    main()
