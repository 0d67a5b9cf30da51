"""The web page (demo.py): one real server on 127.0.0.1, driven through its API
(gradio_client) and in a real headless Chromium (Debian's chromium and
chromium-driver, installed by scripts/install_test_deps.sh).

The server is started once for the module, as a user would (`python demo.py
--port N`), with the bundled checkpoint. Expected images are computed here
independently (numpy/OpenCV), not through demo.py's functions.
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

import cv2
import numpy as np
import pytest

from conftest import ROOT

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
