"""demo.py's web page (Gradio): its requests, the page and the server, over the functions test.py runs.

demo.py switches Gradio's telemetry and version check off before this module imports gradio.
"""
import os
import shutil
import signal
import socket
import tempfile
import time
import traceback
from typing import Callable, NamedTuple

import cv2
import gradio as gr
import numpy as np
from PIL import Image

from data.constants import FRAME, LR_SIZE
from data.degradation import JPEG_QUALITY, degrade
from data.images import ImageReadError, list_images, prepare_hr, prepare_lr, read_image, upscale_bicubic
from deploy.inference import load_inference
from faces import align, detect, photo as real_photo, sizes
from metrics.quality import psnr
from models import CheckpointError
from utils import fail, to_uint8, write_png
from video.clip import super_resolve_video
from video.io import PLAYABLE_PIXELS, VIDEO_EXTENSIONS, VideoReader, VideoReadError
from video.scene import TONE_HZ, Scene, write_clip

PROG = "demo.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES_DIR = os.path.join(ROOT, "datasets", "test")
MODES = ("photo", "aligned face")
UPSCALES = (1, 2, 4, 8)
DEFAULT_UPSCALE = 4
PAGE_MAX_UPLOAD_PIXELS = 12_000_000  # a 12 MP phone photo
# the composed photo the page sends back (a 2000x2000 photo at x2): the page's own limit, under the
# real-photo path's faces.sizes.MAX_OUTPUT_PIXELS
PAGE_MAX_RESULT_PIXELS = 16_000_000
MAX_FILE_SIZE = "25mb"
LIMITS_TEXT = (f"Uploads: images up to {PAGE_MAX_UPLOAD_PIXELS / 1e6:g} megapixels and {MAX_FILE_SIZE[:-2]} MB; "
               f"photo results up to {PAGE_MAX_RESULT_PIXELS / 1e6:g} megapixels (photo size x upscale squared).")
KEEP_SECONDS = 3600  # results (and Gradio's copies of uploads) are deleted after an hour
# A video request holds the page's one worker for the whole clip, and the video path takes about a
# second a frame on 2 cores: ten seconds of video is already minutes of waiting for everyone queued.
PAGE_MAX_VIDEO_SECONDS = 10
# a 640x360 frame: the face search, the path's largest cost, grows with the frame's pixels
PAGE_MAX_VIDEO_PIXELS = 640 * 360


def widescreen(pixels):
    """The 16:9 frame of `pixels` pixels, as 'WxH': how the page names its frame limit."""
    return f"{round((pixels * 16 / 9) ** 0.5)}x{round((pixels * 9 / 16) ** 0.5)}"


VIDEO_LIMITS_TEXT = (f"Videos up to {PAGE_MAX_VIDEO_SECONDS} s and {MAX_FILE_SIZE[:-2]} MB, frames up to "
                     f"{PAGE_MAX_VIDEO_PIXELS:,} pixels (a {widescreen(PAGE_MAX_VIDEO_PIXELS)} frame); result frames "
                     f"up to {PLAYABLE_PIXELS / 1e6:.3g} megapixels, what browsers play (a "
                     f"{widescreen(PAGE_MAX_VIDEO_PIXELS)} video up to x"
                     f"{max(u for u in UPSCALES if PAGE_MAX_VIDEO_PIXELS * u * u <= PLAYABLE_PIXELS)}). "
                     f"On a 2-core CPU the video path takes about a "
                     f"second a frame: a {PAGE_MAX_VIDEO_SECONDS} s clip at 25 frames/s takes minutes.")

# The bundled sample clip (video.scene): faces walking in a small 16:9 frame, at the 16-22 px the model
# is made for; two faces, so the table shows two tracks; few frames, as the path is slow, yet enough for
# the faces to move; video.scene's tone, so the kept sound can be heard.
SAMPLE_CLIP_FACES = 2
SAMPLE_CLIP_SIZE = (160, 90)
SAMPLE_CLIP_SECONDS = 3
SAMPLE_CLIP_FPS = 10

# The low end of the faces the real-photo benchmark found and improved (docs/evaluation.md, "On real photos").
ABOUT_SMALLEST = 10
ABOUT_TEXT = (f"**What this is for:** small, blurry faces, roughly {ABOUT_SMALLEST} to "
              f"{real_photo.MAX_FRAME:g} px across, as in a group photo, a crowd or a thumbnail: EIPNet makes a "
              f"face 8 times sharper. Upload such a photo, or a face crop in 'aligned face' mode, or a short video in "
              f"the video tab, or pick a sample.")


class Model(NamedTuple):
    """A loaded generator: `name` (its weights' path as given, relative to the repository when inside it)
    for the page to say which model made a result, and its `predict`."""
    name: str
    predict: Callable


class DemoError(ValueError):
    """A request the page refuses; the message is shown to the user as is."""


# ----------------------------------------------------------------- the pipeline

def enhance_photo(photo, predict, upscale, max_pixels=PAGE_MAX_RESULT_PIXELS):
    """The page's only link to the real-photo pipeline (test.py --real_world for one photo).

    photo: uint8 RGB [H, W, 3]; predict: the generator's predict; upscale: an
    int. Returns the pipeline's faces.photo.PhotoResult; raises DemoError for a
    request the pipeline refuses. Each face says whether it was super-resolved
    or left as bicubic (too large for the 8x model, or too small), as test.py's
    report does.
    """
    try:
        return real_photo.super_resolve_photo(photo, predict, upscale, max_pixels=max_pixels)
    except sizes.PhotoTooLargeError as err:
        raise DemoError(str(err)) from err


def enhance_face(image, predict, framed=False):
    """(lr, bicubic, sr, hr or None, seconds) for one face crop: test.py's default path, or its
    --lr_input path for a 16x16 image. `framed`: the image is the 128x128 frame already."""
    start = time.perf_counter()
    if image.shape[:2] == (LR_SIZE, LR_SIZE) and not framed:
        hr, lr = None, prepare_lr(image, LR_SIZE)
    else:
        hr = image if framed else prepare_hr(image, FRAME, FRAME, "folder")
        lr = degrade(hr).numpy().astype(np.uint8)
    sr, _ = predict(lr[None].astype(np.float32))
    sr = to_uint8(sr[0])
    return lr, upscale_bicubic(lr, sr.shape[0] // lr.shape[0]), sr, hr, time.perf_counter() - start


# ----------------------------------------------------------------- requests

def read_upload(path):
    """uint8 RGB of an uploaded file, by test.py's reader; DemoError when it is not a usable image."""
    if not path:
        raise DemoError("No image: upload a photo or pick a sample first.")
    check_pixels(*header_size(path))  # before decoding: a small file can hold a huge image
    try:
        image = read_image(path)
    except ImageReadError as err:
        raise DemoError(f"This file is not an image we can read ({err}). Upload a JPEG, PNG, BMP or WebP.") from err
    check_pixels(image.shape[1], image.shape[0])
    return image


def header_size(path):
    """(width, height) from the file's header without decoding it; (0, 0) when Pillow cannot tell
    (the decoder then has the last word)."""
    try:
        with Image.open(path) as image:
            return image.size
    except Image.DecompressionBombError as err:
        raise DemoError(f"The image is over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, over this "
                        f"page's limit of {PAGE_MAX_UPLOAD_PIXELS / 1e6:g} megapixels: downscale it first.") from err
    except Exception:
        return (0, 0)


def check_pixels(w, h):
    if w * h > PAGE_MAX_UPLOAD_PIXELS:
        raise DemoError(f"The image is {w}x{h} ({w * h / 1e6:.1f} megapixels), over this page's limit of "
                        f"{PAGE_MAX_UPLOAD_PIXELS / 1e6:g} megapixels: downscale it first.")


def check_upscale(w, h, upscale, what="photo", limit=PAGE_MAX_RESULT_PIXELS):
    """upscale as an int from UPSCALES whose result (a w x h `what` upscaled) fits `limit` pixels;
    DemoError otherwise."""
    if upscale not in UPSCALES and str(upscale) not in map(str, UPSCALES):
        raise DemoError(f"upscale must be one of {', '.join(map(str, UPSCALES))}, got {upscale!r}.")
    upscale = int(upscale)
    if h * w * upscale ** 2 > limit:
        fits = [u for u in UPSCALES if h * w * u ** 2 <= limit]
        hint = f"choose upscale {fits[-1]} or less" if fits else f"downscale the {what} first"
        raise DemoError(f"A {w}x{h} {what} at x{upscale} would be {w * upscale}x{h * upscale} "
                        f"({w * h * upscale ** 2 / 1e6:.1f} megapixels), over this page's limit of "
                        f"{limit / 1e6:.3g} megapixels: {hint}.")
    return upscale


def upload_path(payload):
    """The cached file of a gr.Image payload (the event skips Gradio's own decoding, see `build`)."""
    if isinstance(payload, dict):
        return payload.get("path")
    return payload


def fresh_folder(out_dir):
    """A new empty folder under out_dir for one result, so its file keeps the user's name; folders
    older than KEEP_SECONDS go, so a long-running server does not fill the disk."""
    now = time.time()
    for old in os.listdir(out_dir):
        old = os.path.join(out_dir, old)
        if now - os.path.getmtime(old) > KEEP_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(dir=out_dir)


def write_result(image, name, out_dir):
    """The PNG offered for download, in a `fresh_folder` of out_dir."""
    path = os.path.join(fresh_folder(out_dir), name)
    write_png(path, image)
    return path


def face_rows(faces):
    """Table rows: face number, box, frame side in photo px, what happened."""
    rows, k = [], 0
    for face in faces:
        if face["box"] is None:
            rows.append(["", "", "", face["status"]])
            continue
        rows.append([k, " ".join(f"{v:g}" for v in face["box"]), f"{face['frame_px']:g}", face["status"]])
        k += 1
    return rows


def measured(sr, bicubic, hr, what):
    return (f"against {what}: PSNR EIPNet {psnr(sr, hr):.2f} dB, bicubic {psnr(bicubic, hr):.2f} dB")


def none_super_resolved(image, result, predict):
    """(lr, bicubic, sr, hr, status) when a photo's faces were found but none super-resolved: why, in plain
    words, and what EIPNet does to the largest face shrunk to 16x16 instead."""
    k = max(range(len(result.faces)), key=lambda i: result.faces[i]["frame_px"])
    lr, bicubic, sr, hr, _ = enhance_face(align.face_in_frame(image, result.matrices[k]), predict, framed=True)
    too_large = result.faces[k]["status"] == real_photo.TOO_LARGE
    why = (f"its face spans about {result.faces[k]['frame_px']:.0f} px, and EIPNet is made for faces of "
           f"roughly {ABOUT_SMALLEST}-{real_photo.MAX_FRAME:g} px: it turns a {LR_SIZE}x{LR_SIZE} face into "
           f"{FRAME}x{FRAME}" if too_large else f"its faces are {result.faces[k]['status']}")
    status = (f"**No face in this photo was super-resolved:** {why}. The photo came back upscaled bicubically "
              f"only.\n\n**Shown instead: what EIPNet does to this face shrunk to {LR_SIZE}x{LR_SIZE} px** "
              f"(bicubic | EIPNet | the original face at {FRAME}x{FRAME}; "
              f"{measured(sr, bicubic, hr, 'the original')}). To super-resolve a whole photo, upload one whose "
              f"faces are small, such as a group photo (try the samples), or choose 'aligned face' for a face "
              f"crop.")
    return lr, bicubic, sr, hr, status


def run(payload, mode, upscale, models, out_dir):
    """(slider pair, bicubic, EIPNet, original or None, PNG path, face rows, status text) for one request.

    models: {mode: Model}, the generator each mode runs; the status names it."""
    if mode not in MODES:
        raise DemoError(f"Unknown mode {mode!r}: choose one of {', '.join(MODES)}.")
    result = run_mode(payload, mode, upscale, models[mode].predict, out_dir)
    return result[:-1] + (f"{result[-1]}\n\nModel: {models[mode].name}",)


def run_mode(payload, mode, upscale, predict, out_dir):
    image = read_upload(upload_path(payload))
    stem = os.path.splitext(os.path.basename(upload_path(payload) or "image"))[0]
    if mode == "photo":
        upscale = check_upscale(image.shape[1], image.shape[0], upscale)
        result = enhance_photo(image, predict, upscale)
        found = [f for f in result.faces if f["box"] is not None]
        if not found:
            raise DemoError("No face found in this photo. For a face crop, choose 'aligned face'.")
        improved = sum(f["status"] == real_photo.SUPER_RESOLVED for f in found)
        if not improved:
            _, bicubic, sr, hr, status = none_super_resolved(image, result, predict)
            return ((bicubic, sr), bicubic, sr, hr, write_result(sr, f"{stem}_face_SR.png", out_dir),
                    face_rows(result.faces), status)
        output, bicubic = result.composed, upscale_bicubic(image, upscale)
        status = (f"{len(found)} face(s) found, {improved} super-resolved; photo {image.shape[1]}x{image.shape[0]} "
                  f"-> {output.shape[1]}x{output.shape[0]} (x{upscale}) in {result.seconds['total']:.1f} s")
        return ((bicubic, output), bicubic, output, None,
                write_result(output, f"{stem}_x{upscale}_SR.png", out_dir), face_rows(result.faces), status)
    lr, bicubic, sr, hr, seconds = enhance_face(image, predict)
    status = f"{LR_SIZE}x{LR_SIZE} -> {sr.shape[1]}x{sr.shape[0]} in {seconds:.2f} s"
    if hr is not None:
        status += "; " + measured(sr, bicubic, hr, f"the {FRAME}x{FRAME} crop of your image")
    else:
        status += " (a 16x16 upload is the model's input itself: no original to measure against)"
    return (bicubic, sr), bicubic, sr, hr, write_result(sr, f"{stem}_SR.png", out_dir), [], status


def shown(request, *args):
    """request(*args), with a DemoError shown to the user as its message and any other error as one line
    (its details go to the server's console only): the server stays up."""
    try:
        return request(*args)
    except DemoError as err:
        raise gr.Error(str(err), print_exception=False) from None
    except Exception as err:
        traceback.print_exc()
        raise gr.Error(f"Internal error ({type(err).__name__}); the server log has the details.",
                       print_exception=False) from None


def handler(models, out_dir):
    def process(payload, mode, upscale):
        return shown(run, payload, mode, upscale, models, out_dir)
    return process


# ----------------------------------------------------------------- videos

def video_info(path):
    """The uploaded video's header (video.io.VideoInfo), read without decoding a frame; DemoError when the
    file is not a readable video."""
    if not path:
        raise DemoError("No video: upload one or pick the sample first.")
    try:
        with VideoReader(path) as reader:
            return reader.info
    except VideoReadError as err:
        raise DemoError(unreadable(err, path)) from err


def unreadable(err, path):
    """The page's message for a VideoReadError of the upload at `path`: the user's file name, not the server's."""
    kinds = ", ".join(e[1:].upper() for e in VIDEO_EXTENSIONS)
    return f"{str(err).replace(path, os.path.basename(path))}. Upload a video: {kinds}."


def video_seconds(info):
    """A video's length from its header: its duration, else frames / fps; None when it says neither."""
    if info.duration is not None:
        return info.duration
    return info.frames / float(info.fps) if info.frames else None


def check_video(info, upscale):
    """upscale as an int for a video whose header `info` is within the page's limits; DemoError otherwise."""
    seconds = video_seconds(info)
    if seconds is None:
        raise DemoError("This video's header does not say how long it is, so the page cannot check it against its "
                        f"limit of {PAGE_MAX_VIDEO_SECONDS} s: save it as MP4 first.")
    if round(seconds, 1) > PAGE_MAX_VIDEO_SECONDS:  # a clip cut at the limit may say a few ms more
        raise DemoError(f"The video is {seconds:.1f} s long, over this page's limit of {PAGE_MAX_VIDEO_SECONDS} s: "
                        f"trim it to {PAGE_MAX_VIDEO_SECONDS} s or less first.")
    w, h = info.width, info.height
    if w * h > PAGE_MAX_VIDEO_PIXELS:
        raise DemoError(f"The video's frames are {w}x{h} ({w * h:,} pixels), over this page's limit of "
                        f"{PAGE_MAX_VIDEO_PIXELS:,} pixels (a {widescreen(PAGE_MAX_VIDEO_PIXELS)} frame): "
                        f"shrink it first.")
    return check_upscale(w, h, upscale, "video", PLAYABLE_PIXELS)


def track_rows(faces):
    """Table rows of a VideoResult's face tracks: track number, first and last frame, frame side in px,
    what happened."""
    return [[k, f["first"], f["last"], f"{f['frame_px']:g}", f["status"]] for k, f in enumerate(faces)]


def video_status(result, info, upscale, path):
    """The status text of a VideoResult of the upload at `path` whose header was `info`."""
    tracks = len(result.faces)
    done = result.count(real_photo.SUPER_RESOLVED)
    total = result.seconds["total"]
    status = (f"Video {info.width}x{info.height} -> {result.size[0]}x{result.size[1]} (x{upscale}), {result.frames} "
              f"frames at {float(result.fps):g} fps; {tracks} face track{'s' if tracks != 1 else ''} found, {done} "
              f"super-resolved (faces in {result.frames_with_face} frames); "
              f"{'sound kept' if result.audio else 'no sound'}. Done in {total:.1f} s, "
              f"{result.frames / total:.2f} frames/s.")
    if not tracks:
        status += ("\n\n**No face found in this video:** it came back upscaled bicubically only. EIPNet is made "
                   "for small faces, such as the sample's.")
    if result.stopped:
        status += (f"\n\n**Warning:** {result.stopped.replace(path, os.path.basename(path))}; the result "
                   f"holds the frames before it.")
    return status


def run_video(payload, upscale, model, out_dir):
    """(result video, its download, track rows, status text) for one video request, run by `model`
    (the photo mode's: video frames are photos, compressed)."""
    path = upload_path(payload)
    info = video_info(path)
    upscale = check_video(info, upscale)
    name = os.path.basename(path)
    out_path = os.path.join(fresh_folder(out_dir), f"{os.path.splitext(name)[0]}_x{upscale}_SR.mp4")
    try:
        result = super_resolve_video(path, out_path, model.predict, upscale=upscale)
    except VideoReadError as err:
        raise DemoError(unreadable(err, path)) from err
    status = f"{video_status(result, info, upscale, path)}\n\nModel: {model.name}"
    return out_path, out_path, track_rows(result.faces), status


def video_handler(models, out_dir):
    # Gradio passes a progress bar to a parameter defaulting to one; track_tqdm shows the video path's
    # tqdm bars (frames searched, frames super-resolved) in the page.
    def process_video(payload, upscale, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        return shown(run_video, payload, upscale, models["photo"], out_dir)
    return process_video


# ----------------------------------------------------------------- page

def group_photo(paths, out_path, shrink, columns=4, quality=None):
    """A group photo of the bundled photos (whole, `columns` side by side per row) shrunk `shrink` times
    with INTER_AREA, as `scripts.real_world_bench` makes them: a face's 128 frame spans 178 / shrink px.
    Written to out_path, as a JPEG of `quality` when given."""
    photos = [read_image(p) for p in paths]
    rows = [np.concatenate(photos[i:i + columns], axis=1) for i in range(0, len(photos), columns)]
    width = min(r.shape[1] for r in rows)
    tiled = np.concatenate([r[:, :width] for r in rows], axis=0)
    h, w = (side - side % shrink for side in tiled.shape[:2])
    small = cv2.resize(tiled[:h, :w], (w // shrink, h // shrink), interpolation=cv2.INTER_AREA)
    if quality is None:
        write_png(out_path, small)
    else:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise OSError(f"cannot encode {out_path}")
        data.tofile(out_path)
    return out_path


def samples(folder):
    """[path, mode, upscale] examples: two group photos made from the bundled faces (faces of 22 and
    30 px; the second JPEG-compressed), then the faces themselves."""
    faces = list_images(SAMPLES_DIR)
    group = group_photo(faces, os.path.join(folder, "group_photo.png"), shrink=8)
    compressed = group_photo(faces[::-1], os.path.join(folder, f"group_photo_jpeg_q{JPEG_QUALITY}.jpg"), shrink=6,
                             quality=JPEG_QUALITY)
    return [[group, "photo", 8], [compressed, "photo", 4]] + [[p, "aligned face", DEFAULT_UPSCALE] for p in faces]


def video_samples(folder):
    """[[path, upscale]]: a clip of the bundled faces walking, with a tone (video.scene), written to folder."""
    faces = [read_image(p) for p in list_images(SAMPLES_DIR)[:SAMPLE_CLIP_FACES]]
    scene = Scene(faces, SAMPLE_CLIP_SIZE, SAMPLE_CLIP_SECONDS, SAMPLE_CLIP_FPS)
    clip = write_clip(os.path.join(folder, "sample_clip.mp4"), scene, tone_hz=TONE_HZ)
    return [[clip, DEFAULT_UPSCALE]]


def models_text(models):
    if models["photo"].name == models["aligned face"].name:
        return f"Both modes run the generator {models['photo'].name}."
    return (f"'photo' runs {models['photo'].name}, the generator fine-tuned on compressed, noisy faces; "
            f"'aligned face' runs {models['aligned face'].name}, the paper's recipe.")


def photo_tab(models, work_dir, out_dir):
    """The photo part of the page: upload, mode, upscale, samples; slider, images, download, status, faces."""
    gr.Markdown("**photo**: the faces are found, super-resolved and pasted back into the photo upscaled "
                "bicubically; the table says what happened to each. **aligned face**: a face crop is "
                "reduced to 16x16 as in training and super-resolved to 128x128. " + models_text(models)
                + "\n\n" + LIMITS_TEXT)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.Image(label="your photo or face crop", type="filepath", sources=["upload", "clipboard"],
                              elem_id="upload")
            mode = gr.Radio(list(MODES), value="photo", label="mode", elem_id="mode")
            upscale = gr.Dropdown(list(UPSCALES), value=DEFAULT_UPSCALE, label="upscale (photo mode)",
                                  elem_id="upscale")
            button = gr.Button("Enhance", variant="primary", elem_id="run")
            gr.Examples(samples(work_dir), inputs=[upload, mode, upscale], label="bundled samples")
        with gr.Column(scale=2):
            slider = gr.ImageSlider(label="bicubic | EIPNet (drag)", format="png", elem_id="slider")
            with gr.Row():
                bicubic = gr.Image(label="bicubic", format="png", interactive=False, elem_id="bicubic",
                                   buttons=["download", "fullscreen"])
                sr = gr.Image(label="EIPNet", format="png", interactive=False, elem_id="sr",
                              buttons=["download", "fullscreen"])
                original = gr.Image(label="original face (aligned face, or a photo's face shown shrunk)",
                                    format="png", interactive=False, elem_id="original",
                                    buttons=["download", "fullscreen"])
            download = gr.File(label="download the EIPNet PNG", elem_id="download")
            status = gr.Markdown(elem_id="status")
            faces = gr.Dataframe(headers=["face", "box x1 y1 x2 y2", "frame px", "what happened"],
                                 label="faces (photo mode)", interactive=False, elem_id="faces")
    # preprocess=False: the upload reaches `run` as a cached file and is decoded by test.py's
    # reader, so a file that is not an image gets our message, not a decoder's traceback.
    button.click(handler(models, out_dir), [upload, mode, upscale],
                 [slider, bicubic, sr, original, download, faces, status],
                 api_name="enhance", preprocess=False)


def video_tab(models, work_dir, out_dir):
    """The video part of the page: upload, upscale, the sample clip; the result, its download, status, tracks."""
    gr.Markdown("**video**: the faces are found, followed from frame to frame and super-resolved in every frame, "
                "each frame upscaled bicubically around them, by the 'photo' mode's generator "
                f"({models['photo'].name}); the sound is kept. The table says what happened to each face's track."
                "\n\n" + VIDEO_LIMITS_TEXT, elem_id="video_about")
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.Video(label="your video", sources=["upload"], elem_id="video_upload")
            upscale = gr.Dropdown(list(UPSCALES), value=DEFAULT_UPSCALE, label="upscale", elem_id="video_upscale")
            button = gr.Button("Enhance video", variant="primary", elem_id="run_video")
            gr.Examples(video_samples(work_dir), inputs=[upload, upscale], label="bundled sample")
        with gr.Column(scale=2):
            result = gr.Video(label="EIPNet (H.264 MP4)", interactive=False, elem_id="video_result")
            download = gr.File(label="download the EIPNet MP4", elem_id="video_download")
            status = gr.Markdown(elem_id="video_status")
            tracks = gr.Dataframe(headers=["track", "first frame", "last frame", "frame px", "what happened"],
                                  label="face tracks", interactive=False, elem_id="tracks")
    # preprocess=False, as for photos: the upload reaches `run_video` as a cached file, read by video.io
    button.click(video_handler(models, out_dir), [upload, upscale], [result, download, tracks, status],
                 api_name="enhance_video", preprocess=False)


def build(models, work_dir):
    """The page for {mode: Model}; its samples and results live under work_dir."""
    out_dir = os.path.join(work_dir, "results")
    os.makedirs(out_dir, exist_ok=True)
    with gr.Blocks(title="EIPNet face super-resolution", analytics_enabled=False,
                   delete_cache=(KEEP_SECONDS, KEEP_SECONDS)) as page:
        gr.Markdown("## EIPNet: face super-resolution (x8, 16 -> 128 px faces)")
        gr.Markdown(ABOUT_TEXT, elem_id="about")
        with gr.Tab("photo", elem_id="photo_tab"):
            photo_tab(models, work_dir, out_dir)
        with gr.Tab("video", elem_id="video_tab"):
            video_tab(models, work_dir, out_dir)
    return page


# ----------------------------------------------------------------- start

def load_predict(weight_path):
    """The generator's predict for the weights at weight_path, warmed up; exits with one line on error."""
    try:
        model = load_inference(weight_path)
    except CheckpointError as err:
        fail(PROG, f"{err}; pass --weight_path to a generator.weights.h5, a train.py checkpoint "
                   f"or the authors' G_weight.ckpt")
    model.predict(np.zeros((1, LR_SIZE, LR_SIZE, 3), np.float32))  # tracing stays out of the first request
    return model.predict


def model_name(weight_path):
    path = os.path.abspath(weight_path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else weight_path


def load_models(photo_weights, face_weights):
    """{mode: Model} of the weights each mode runs (loaded once when they are the same), warmed up."""
    paths = dict.fromkeys((photo_weights, face_weights))
    loaded = {path: Model(model_name(path), load_predict(path)) for path in paths}
    return {"photo": loaded[photo_weights], "aligned face": loaded[face_weights]}


def warm_detector():
    detect.detect_faces(np.zeros((64, 64, 3), np.uint8))


def check_port(host, port):
    """Exit with one line when host:port cannot be served on, before the model takes its seconds to load."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
            s.bind((host, port))
    except OSError as err:
        fail(PROG, f"cannot serve on {host}:{port}: {err.strerror or err}; pick another --port")


def serve(opt):
    """Serve the page as demo.py's options `opt` say, until Ctrl-C or SIGTERM."""
    check_port(opt.host, opt.port)
    models = load_models(opt.photo_weights, opt.face_weights)
    warm_detector()
    work_dir = tempfile.mkdtemp(prefix="eipnet_demo_")
    # `kill` ends the server as Ctrl-C does: Gradio closes it and the work folder goes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    page = build(models, work_dir)
    # One request at a time (the generator takes both cores); the others wait in the queue.
    page.queue(default_concurrency_limit=1, max_size=32)
    try:
        page.launch(server_name=opt.host, server_port=opt.port, share=False, ssr_mode=False, show_error=True,
                    max_file_size=MAX_FILE_SIZE, allowed_paths=[work_dir, SAMPLES_DIR], pwa=False,
                    mcp_server=False, inbrowser=False)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

