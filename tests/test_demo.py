"""The web page (demo.py): one real server on 127.0.0.1, driven through its API
(gradio_client) and in a real headless Chromium (Debian's chromium and
chromium-driver, installed by scripts/install_test_deps.sh).

The server is started once for the module, as a user would (`python demo.py
--port N`), with the bundled checkpoint. Expected images are computed here
independently (numpy/OpenCV), not through demo.py's functions; videos are
made here and their results decoded here, with PyAV.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import av
import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.constants import FRAME

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# Selenium Manager: never look a driver up online, never send usage statistics.
os.environ["SE_OFFLINE"] = "true"
os.environ["SE_AVOID_STATS"] = "true"

SAMPLES = sorted(os.path.join(ROOT, "datasets", "test", n) for n in os.listdir(os.path.join(ROOT, "datasets", "test")))
START_TIMEOUT = 300
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "run `bash scripts/install_test_deps.sh` (as root) first, as the README's test command does"


# The test clip: one bundled face walking in a tiny frame, with a tone; the video path takes about a
# second a frame here, so few frames. Upscaled x2, not the page's default, to see the choice is used.
CLIP_SIZE = (80, 48)
CLIP_SECONDS = 1
CLIP_FPS = 6
CLIP_UPSCALE = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb):
    assert cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def server():
    """(url, work folder) of `python demo.py` on a free port of 127.0.0.1."""
    port = free_port()
    work = tempfile.mkdtemp(prefix="test_demo_")
    env = dict(os.environ, GRADIO_TEMP_DIR=os.path.join(work, "gradio"), CUDA_VISIBLE_DEVICES="-1")
    log = open(os.path.join(work, "server.log"), "w+")
    proc = subprocess.Popen([sys.executable, "demo.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"demo.py exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"demo.py did not serve {url} within {START_TIMEOUT} s")
            time.sleep(1)
        yield url, work
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, download_files=os.path.join(server[1], "downloads"))


def enhance(client, path, mode, upscale=4):
    from gradio_client import handle_file

    return client.predict(handle_file(path), mode, upscale, api_name="/enhance")


def group_photo(tmp_path):
    """The eight bundled photos side by side, shrunk 8x: faces of 22 px (demo.py's first photo sample)."""
    from deploy.web_demo import group_photo

    return group_photo(SAMPLES, str(tmp_path / "group.png"), shrink=8)


def portrait(tmp_path):
    """A close-up: a bundled 178x218 photo enlarged 4x, its face's 128 frame its 712x712 centre square."""
    return write_rgb(str(tmp_path / "portrait.png"), cv2.resize(read_rgb(SAMPLES[0]), (712, 872),
                                                                interpolation=cv2.INTER_CUBIC))


def training_degradation(hr):
    """Three 2x2 means each rounded half up (the released code's degradation) of a 128x128 face."""
    x = hr.astype(np.float64)
    for _ in range(3):
        x = np.floor((x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4 + 0.5)
    return x.astype(np.uint8)


def training_lr(path):
    """The 16x16 input of an aligned 178x218 face, computed here: the 178x178 centre square,
    INTER_LINEAR to 128, then `training_degradation`."""
    image = read_rgb(path)
    top = (image.shape[0] - image.shape[1]) // 2
    hr = cv2.resize(image[top:top + image.shape[1]], (128, 128), interpolation=cv2.INTER_LINEAR)
    return hr, training_degradation(hr)


def face_scene():
    from data.images import read_image
    from video.scene import Scene

    return Scene([read_image(SAMPLES[0])], CLIP_SIZE, CLIP_SECONDS, CLIP_FPS)


def face_clip(tmp_path):
    """The test clip (CLIP_*), H.264 with an AAC tone, as video.scene writes its clips."""
    from video.scene import write_clip

    return write_clip(str(tmp_path / "clip.mp4"), face_scene(), tone_hz=440)


def noise_clip(path, w, h, fps, frames, damaged=False):
    """An H.264 mp4 of `frames` frames of noise at `fps`. `damaged`: its frame data zeroed and its header
    kept, so the file's header reads and any attempt to decode a frame fails."""
    rng = np.random.default_rng(0)
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for _ in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (h, w, 3), np.uint8),
                                                             format="rgb24")))
        out.mux(stream.encode())
    if damaged:  # the writer puts the frames (mdat) before the header (moov)
        data = bytearray(open(path, "rb").read())
        start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
        data[start:end] = bytes(end - start)
        open(path, "wb").write(data)
    return path


def decode(path):
    """(frames as uint8 RGB, the video stream's average rate, its codec and pixel format, the audio codecs)
    of `path`, with PyAV alone."""
    with av.open(path) as container:
        video = container.streams.video[0]
        rate, codec, pix_fmt = video.average_rate, video.codec_context.name, video.codec_context.pix_fmt
        audio = [a.codec_context.name for a in container.streams.audio]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames, rate, codec, pix_fmt, audio


def distance_to_face(scene, index, upscale):
    """float [H, W]: each output pixel's distance to the true face's frame centre at frame `index`, and the
    face's frame side, in output px (the scene's truth map inverted)."""
    truth = scene.truth(0, index)
    inv = cv2.invertAffineTransform(truth)
    centre = inv[:, :2] @ np.full(2, (FRAME - 1) / 2) + inv[:, 2]
    side = FRAME / np.sqrt(abs(np.linalg.det(truth[:, :2]))) * upscale
    cx, cy = (centre + 0.5) * upscale - 0.5
    y, x = np.mgrid[0:CLIP_SIZE[1] * upscale, 0:CLIP_SIZE[0] * upscale]
    return np.hypot(x - cx, y - cy), side


def enhance_video(client, path, upscale=CLIP_UPSCALE):
    from gradio_client import handle_file

    return client.predict(handle_file(path), upscale, api_name="/enhance_video")


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


# ----------------------------------------------------------------- API

@pytest.mark.slow
def test_photo_through_api_is_upscaled_and_differs_from_bicubic(client, tmp_path):
    path = group_photo(tmp_path)
    photo = read_rgb(path)
    slider, bicubic_path, sr_path, original, download, faces, status = enhance(client, path, "photo", 4)
    sr, bicubic = read_rgb(sr_path), read_rgb(bicubic_path)
    h, w = photo.shape[:2]
    assert sr.shape == bicubic.shape == (4 * h, 4 * w, 3)
    expected_bicubic = cv2.resize(photo, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(bicubic, expected_bicubic)
    # The download is the lossless PNG of what the page shows; the slider pairs bicubic with it.
    assert open(download, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(read_rgb(download), sr)
    assert [np.array_equal(read_rgb(p), ref) for p, ref in zip(slider, (bicubic, sr))] == [True, True]
    assert original is None
    # Whichever faces the pipeline chooses to improve, the page says so and they changed, visibly:
    # mean absolute difference of at least 2 levels over the face's box (scaled x4).
    rows = [row for row in faces["data"] if row[1]]
    improved = [row for row in rows if row[-1] == "super-resolved"]
    assert improved, faces
    assert re.search(rf"{len(rows)} face\(s\) found, {len(improved)} super-resolved; photo {w}x{h} -> {4 * w}x{4 * h} "
                     rf"\(x4\) in [0-9.]+ s", status), status
    for row in improved:
        x1, y1, x2, y2 = (int(round(4 * float(v))) for v in row[1].split())
        diff = np.abs(sr[y1:y2, x1:x2].astype(np.int16) - bicubic[y1:y2, x1:x2]).mean()
        assert diff > 2.0, (row, diff)


@pytest.mark.slow
def test_aligned_face_through_api_matches_the_training_path(client):
    path = SAMPLES[0]
    hr, lr = training_lr(path)
    _, bicubic_path, sr_path, original, download, faces, status = enhance(client, path, "aligned face")
    sr, bicubic = read_rgb(sr_path), read_rgb(bicubic_path)
    assert sr.shape == bicubic.shape == (128, 128, 3)
    assert np.array_equal(read_rgb(original), hr)
    assert np.array_equal(bicubic, cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
    assert np.abs(sr.astype(np.int16) - bicubic).mean() > 3.0
    assert os.path.basename(download) == os.path.basename(path).rsplit(".", 1)[0] + "_SR.png"
    assert faces["data"] == []
    # The PSNRs the page states are those of the images it returned, against the 128x128 crop.
    stated = [float(v) for v in re.findall(r"PSNR EIPNet ([0-9.]+) dB, bicubic ([0-9.]+) dB", status)[0]]
    assert stated == pytest.approx([psnr(sr, hr), psnr(bicubic, hr)], abs=0.006)
    assert stated[0] > stated[1]
    assert status.endswith("Model: checkpoint/CelebA"), status  # demo.py's default for aligned faces


@pytest.mark.slow
def test_a_16x16_upload_is_the_model_input_itself(client, tmp_path):
    _, lr = training_lr(SAMPLES[1])
    path = write_rgb(str(tmp_path / "lr.png"), lr)
    _, bicubic_path, sr_path, original, _, _, status = enhance(client, path, "aligned face")
    assert np.array_equal(read_rgb(bicubic_path), cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
    assert read_rgb(sr_path).shape == (128, 128, 3)
    assert "no original to measure against" in status and original is None


@pytest.mark.slow
def test_a_portrait_gets_why_and_its_face_shrunk_to_16_px(client, tmp_path):
    """A close-up's face is far too large for the 8x model: the page says so and shows what EIPNet
    does to that face shrunk to 16x16, beside the original face, instead of a bicubic photo."""
    _, bicubic_path, sr_path, original_path, download, faces, status = enhance(client, portrait(tmp_path), "photo", 1)
    sr, bicubic, original = read_rgb(sr_path), read_rgb(bicubic_path), read_rgb(original_path)
    assert sr.shape == bicubic.shape == original.shape == (128, 128, 3)
    assert "No face in this photo was super-resolved" in status and "shrunk to 16x16" in status, status
    assert [row[-1] for row in faces["data"]] == ["too large for the 8x model: left as bicubic"]
    # the original is this face in the training frame: the enlarged photo's 712x712 centre square, 128 px
    centre = read_rgb(portrait(tmp_path))[80:792]
    expected = cv2.resize(centre, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
    assert np.corrcoef(expected.ravel(), original.astype(np.float64).ravel())[0, 1] > 0.97
    # ... shrunk as in training, then bicubic and EIPNet, measured against it as the status says
    lr = training_degradation(original)
    assert np.array_equal(bicubic, cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC))
    assert np.abs(sr.astype(np.int16) - bicubic).mean() > 3.0
    stated = [float(v) for v in re.findall(r"PSNR EIPNet ([0-9.]+) dB, bicubic ([0-9.]+) dB", status)[0]]
    assert stated == pytest.approx([psnr(sr, original), psnr(bicubic, original)], abs=0.006)
    assert os.path.basename(download) == "portrait_face_SR.png" and np.array_equal(read_rgb(download), sr)

    # the bundled 178x218 photo itself, in photo mode: its face (frame 178 px) too
    _, _, sr_path, original_path, _, _, status = enhance(client, SAMPLES[0], "photo", 4)
    assert "No face in this photo was super-resolved" in status and read_rgb(sr_path).shape == (128, 128, 3)
    assert status.endswith("Model: checkpoint/CelebA-real"), status  # demo.py's default for photos


@pytest.mark.slow
def test_bad_input_gets_a_message_and_the_server_stays_up(client, tmp_path):
    from gradio_client.exceptions import AppError

    def message(path, mode="photo", upscale=4):
        with pytest.raises(AppError) as err:
            enhance(client, path, mode, upscale)
        text = str(err.value)
        assert "Traceback" not in text and "File \"" not in text
        return text

    text_file = tmp_path / "notes.png"
    text_file.write_text("not a picture")
    assert "not an image we can read" in message(str(text_file))

    huge = write_rgb(str(tmp_path / "huge.png"), np.full((3001, 4000, 3), 128, np.uint8))  # 12.0 MP
    assert "4000x3001 (12.0 megapixels), over this page's limit of 12 megapixels" in message(huge)
    # A 240 kB PNG of 225 megapixels is refused from its header, before anything decodes it.
    bomb = str(tmp_path / "bomb.png")
    assert cv2.imwrite(bomb, np.zeros((15000, 15000), np.uint8))
    assert "The image is over 179 megapixels, over this page's limit of 12 megapixels" in message(bomb)

    rng = np.random.default_rng(1)
    sky = cv2.resize(rng.uniform(40, 220, (3, 4, 3)).astype(np.float32), (320, 240), interpolation=cv2.INTER_CUBIC)
    sky = write_rgb(str(tmp_path / "sky.png"), np.clip(sky, 0, 255).astype(np.uint8))
    assert "No face found in this photo" in message(sky)
    big = write_rgb(str(tmp_path / "big.png"), cv2.resize(read_rgb(sky), (600, 500)))
    assert ("A 600x500 photo at x8 would be 4800x4000 (19.2 megapixels), over this page's limit of "
            "16 megapixels: choose upscale 4 or less") in message(big, upscale=8)

    # ... and the next good request is served.
    _, _, sr_path, _, _, _, _ = enhance(client, SAMPLES[2], "aligned face")
    assert read_rgb(sr_path).shape == (128, 128, 3)


@pytest.mark.slow
def test_concurrent_requests_queue_and_all_finish(client):
    jobs = [client.submit(__import__("gradio_client").handle_file(p), "aligned face", 4, api_name="/enhance")
            for p in SAMPLES[3:6]]
    results = [job.result(timeout=300) for job in jobs]
    assert [read_rgb(r[2]).shape for r in results] == [(128, 128, 3)] * 3
    assert len({open(r[4], "rb").read() for r in results}) == 3


@pytest.mark.slow
def test_video_through_api_keeps_frames_rate_and_sound_and_super_resolves_the_face(client, tmp_path):
    clip = face_clip(tmp_path)
    video, download, tracks, status = enhance_video(client, clip)
    assert os.path.basename(video) == f"clip_x{CLIP_UPSCALE}_SR.mp4"
    assert open(download, "rb").read() == open(video, "rb").read()
    frames, rate, codec, pix_fmt, audio = decode(video)
    inputs, input_rate, _, _, _ = decode(clip)
    w, h = CLIP_SIZE
    assert (codec, pix_fmt, audio) == ("h264", "yuv420p", ["aac"])  # what browsers play, with the sound
    assert rate == input_rate == CLIP_FPS and len(frames) == len(inputs) == CLIP_SECONDS * CLIP_FPS
    assert {f.shape for f in frames} == {(h * CLIP_UPSCALE, w * CLIP_UPSCALE, 3)}
    # Each frame is the input's upscaled bicubically (up to the codec) but for the face, which changed.
    scene = face_scene()
    for k, (out, lr) in enumerate(zip(frames, inputs)):
        bicubic = cv2.resize(lr, (w * CLIP_UPSCALE, h * CLIP_UPSCALE), interpolation=cv2.INTER_CUBIC)
        diff = np.abs(out.astype(np.float64) - bicubic).mean(axis=2)
        distance, side = distance_to_face(scene, k, CLIP_UPSCALE)
        assert diff[distance > side].mean() < 3.0, k
        assert diff[distance < 0.3 * side].mean() > 4.0, k
    rows = tracks["data"]
    assert rows and all(0 <= row[1] <= row[2] < len(frames) for row in rows), rows
    improved = sum(row[-1] == "super-resolved" for row in rows)
    assert improved >= 1, rows
    assert re.search(rf"^Video {w}x{h} -> {w * CLIP_UPSCALE}x{h * CLIP_UPSCALE} \(x{CLIP_UPSCALE}\), {len(frames)} "
                     rf"frames at {CLIP_FPS} fps; {len(rows)} face tracks? found, {improved} super-resolved "
                     rf"\(faces in [0-9]+ frames\); sound kept\. Done in [0-9.]+ s, [0-9.]+ frames/s\.", status), status
    assert status.endswith("Model: checkpoint/CelebA-real"), status  # the photo mode's generator


@pytest.mark.slow
def test_video_limits_are_checked_from_the_header_and_explained(client, tmp_path):
    """Clips over the page's limits are refused from their header: their frames are zeroed, so a page
    that decoded them first would say they are unreadable instead."""
    from gradio_client.exceptions import AppError

    from deploy.web_demo import PAGE_MAX_VIDEO_PIXELS, PAGE_MAX_VIDEO_SECONDS

    def message(path, upscale=4):
        with pytest.raises(AppError) as err:
            enhance_video(client, path, upscale)
        text = str(err.value)
        assert "Traceback" not in text and "File \"" not in text
        return text

    long = noise_clip(str(tmp_path / "long.mp4"), 32, 32, 1, PAGE_MAX_VIDEO_SECONDS + 1, damaged=True)
    assert (f"The video is {PAGE_MAX_VIDEO_SECONDS + 1:.1f} s long, over this page's limit of "
            f"{PAGE_MAX_VIDEO_SECONDS} s: trim it") in message(long)
    w = PAGE_MAX_VIDEO_PIXELS // 360 + 2  # an even width (H.264's frames are) just over the limit at 360 rows
    wide = noise_clip(str(tmp_path / "wide.mp4"), w, 360, 1, 1, damaged=True)
    assert (f"The video's frames are {w}x360 ({w * 360:,} pixels), over this page's limit of "
            f"{PAGE_MAX_VIDEO_PIXELS:,} pixels") in message(wide)
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("not a video")
    text = message(str(text_file))
    assert text.startswith("notes.mp4: not a readable video") and "Upload a video" in text, text
    assert "upscale must be one of" in message(face_clip(tmp_path), upscale=3)
    # the largest frame taken, at x8, would not play in browsers' decoders: refused with the upscale that fits
    largest = noise_clip(str(tmp_path / "largest.mp4"), 640, 360, 1, 1, damaged=True)
    assert ("A 640x360 video at x8 would be 5120x2880 (14.7 megapixels), over this page's limit of 9.44 "
            "megapixels: choose upscale 4 or less") in message(largest, upscale=8)

    # A clip of exactly the longest length is taken (and the server is still up): no face in it, said so.
    edge = noise_clip(str(tmp_path / "edge.mp4"), 32, 32, 1, PAGE_MAX_VIDEO_SECONDS)
    video, _, tracks, status = enhance_video(client, edge, 4)
    frames = decode(video)[0]
    assert len(frames) == PAGE_MAX_VIDEO_SECONDS and frames[0].shape == (128, 128, 3)
    assert tracks["data"] == [] and "No face found in this video" in status, status


def test_each_result_gets_a_fresh_folder_and_old_ones_go(tmp_path):
    """Photo and video results share one folder rule: a new empty folder each, those older than
    KEEP_SECONDS removed (mtimes set back here), younger ones kept."""
    from deploy.web_demo import KEEP_SECONDS, fresh_folder

    old, young = tmp_path / "old", tmp_path / "young"
    for folder, age in ((old, KEEP_SECONDS + 60), (young, KEEP_SECONDS - 60)):
        folder.mkdir()
        (folder / "result.mp4").write_bytes(b"x")
        os.utime(folder, (time.time() - age, time.time() - age))
    first, second = fresh_folder(str(tmp_path)), fresh_folder(str(tmp_path))
    assert first != second and os.listdir(first) == os.listdir(second) == []
    assert sorted(os.listdir(tmp_path)) == sorted(["young", os.path.basename(first), os.path.basename(second)])


# ----------------------------------------------------------------- browser

def loaded_size(selector):
    """A WebDriverWait condition: [width, height] of the first image at `selector` once it has loaded."""
    from selenium.webdriver.common.by import By

    def size(d):
        images = d.find_elements(By.CSS_SELECTOR, selector)
        if not images:
            return None
        return d.execute_script("const i = arguments[0]; return i.complete ? [i.naturalWidth, i.naturalHeight] : null",
                                images[0])
    return size


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="test_demo_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # A fresh profile and no background services: Chromium contacts nothing but the page.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
def test_page_in_chromium_shows_the_result_of_an_upload_and_errors(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = server[0]
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    # what the page is for, above the upload
    about = browser.find_element(By.CSS_SELECTOR, "#about")
    assert "What this is for" in about.text and "group photo" in about.text, about.text
    assert about.location["y"] < browser.find_element(By.CSS_SELECTOR, "#upload").location["y"]
    photo = group_photo(tmp_path)
    h, w = read_rgb(photo).shape[:2]
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(photo)
    # The upload is shown before the button is pressed (it is on the server by then).
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload img"))
    browser.find_element(By.CSS_SELECTOR, "#run").click()

    assert WebDriverWait(browser, 180).until(loaded_size("#sr img")) == [4 * w, 4 * h]
    status = browser.find_element(By.CSS_SELECTOR, "#status").text
    improved = int(re.search(r"face\(s\) found, ([0-9]+) super-resolved", status).group(1))
    assert improved > 0
    assert browser.find_element(By.CSS_SELECTOR, "#faces").text.count("\nsuper-resolved") == improved
    assert browser.find_elements(By.CSS_SELECTOR, "#download a")
    # Everything the page loaded came from the demo's own server (no CDN fonts, no analytics).
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and [r for r in resources if not r.startswith(url)] == []

    # A file that is not an image: the page shows the message, no traceback.
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(not_image))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload img"))  # uploaded
    browser.find_element(By.CSS_SELECTOR, "#run").click()
    # the toast's element appears a moment before its text: wait for the text
    toast = WebDriverWait(browser, 60).until(
        lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "[data-testid=toast-body]") if t.text.strip()])
    assert "This file is not an image we can read" in toast[0].text, toast[0].text
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.slow
def test_page_in_chromium_explains_a_portrait_and_shows_its_face_shrunk(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server[0])
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(portrait(tmp_path))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload img"))
    browser.find_element(By.CSS_SELECTOR, "#run").click()  # photo mode, the default
    assert WebDriverWait(browser, 180).until(loaded_size("#sr img")) == [128, 128]
    assert WebDriverWait(browser, 60).until(loaded_size("#original img")) == [128, 128]
    status = browser.find_element(By.CSS_SELECTOR, "#status").text
    assert "No face in this photo was super-resolved" in status, status
    assert "what EIPNet does to this face shrunk to 16x16" in status and "group photo" in status, status
    assert "too large for the 8x model" in browser.find_element(By.CSS_SELECTOR, "#faces").text


@pytest.mark.slow
def test_page_in_chromium_has_a_video_tab_with_its_limits_sample_and_a_playable_result(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from deploy.web_demo import PAGE_MAX_VIDEO_PIXELS, PAGE_MAX_VIDEO_SECONDS

    browser.get(server[0])
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#video_tab-button").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#video_upload input[type=file]"))
    about = browser.find_element(By.CSS_SELECTOR, "#video_about").text
    assert (f"Videos up to {PAGE_MAX_VIDEO_SECONDS} s" in about and f"frames up to {PAGE_MAX_VIDEO_PIXELS:,} pixels "
            "(a 640x360 frame)" in about and "about a second a frame" in about), about
    # The bundled sample clip is offered: a short clip with sound, within the page's limits.
    sample = WebDriverWait(browser, 30).until(
        lambda d: [v.get_attribute("src") for v in d.find_elements(By.TAG_NAME, "video")
                   if "sample_clip" in (v.get_attribute("src") or "")])
    path = str(tmp_path / "sample.mp4")
    urllib.request.urlretrieve(sample[0], path)
    frames, rate, _, _, audio = decode(path)
    h, w = frames[0].shape[:2]
    assert audio == ["aac"] and len(frames) / rate <= PAGE_MAX_VIDEO_SECONDS and w * h <= PAGE_MAX_VIDEO_PIXELS

    browser.find_element(By.CSS_SELECTOR, "#video_upload input[type=file]").send_keys(face_clip(tmp_path))
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#video_upload video"))
    browser.find_element(By.CSS_SELECTOR, "#run_video").click()

    def played(d):  # the result's size and length once the browser has read its header
        videos = d.find_elements(By.CSS_SELECTOR, "#video_result video")
        return videos and d.execute_script(
            "const v = arguments[0]; return v.readyState >= 1 ? [v.videoWidth, v.videoHeight, v.duration] : null",
            videos[0])
    width, height, seconds = WebDriverWait(browser, 180).until(played)
    assert [width, height] == [CLIP_SIZE[0] * 4, CLIP_SIZE[1] * 4]  # the page's default upscale
    assert seconds == pytest.approx(CLIP_SECONDS, abs=0.2)
    assert "super-resolved" in browser.find_element(By.CSS_SELECTOR, "#tracks").text
    assert "sound kept" in browser.find_element(By.CSS_SELECTOR, "#video_status").text
    assert browser.find_elements(By.CSS_SELECTOR, "#video_download a")
