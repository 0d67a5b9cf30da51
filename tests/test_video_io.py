"""video/io.py: VideoReader and VideoWriter against clips made here with PyAV directly (not through the
module), checked by decoding with PyAV and NumPy: frame counts, rates, pixels, audio tone and length,
containers, damaged files, the temporary name, and audio muxed as frames are written."""
import fractions
import os
import re

import av
import numpy as np
import pytest

from video.io import VideoReader, VideoReadError, VideoWriter, is_video

WIDTH, HEIGHT, FPS = 64, 48, 25
# The patches of pure red, green and blue along pattern()'s top, each one H.264 macroblock: a writer that
# converts with one colour matrix and tags another gets these wrong first. Their inside (MARGIN in from
# each edge) is checked, clear of the colour the coarser chroma takes from the neighbours.
PATCH, MARGIN = 16, 4
PATCH_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
# Mean absolute error, in grey levels, allowed between a frame and its H.264/MPEG-4 decoding at the
# qualities used here: chroma is kept at half resolution, so the sharp colour edges of pattern() cost a
# few levels; a wrong frame (the next one, or another colour matrix) is far beyond.
MAE = 5.0
# Largest error allowed inside a colour patch: a little compression noise; another matrix is off by tens.
PATCH_ERROR = 8
TONE, AMPLITUDE = 440.0, 0.5  # Hz, of full scale
# Seconds the tone's start may move against the first frame: Matroska keeps times to the millisecond;
# a track left unmoved when its input's streams start late is off by that whole start.
SYNC = 0.002
# Seconds of silence before the tone: where the tone starts, against the first frame, is the sync.
ONSET = 0.25


def pattern(i, width=WIDTH, height=HEIGHT):
    """Frame i: red and green ramps, a blue level of its own, red/green/blue patches and a white square
    that moves 4 px a frame."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = 255 * x // (width - 1)
    frame[..., 1] = 255 * y // (height - 1)
    frame[..., 2] = (37 * i) % 200 + 30
    for k, colour in enumerate(PATCH_COLOURS):
        frame[:PATCH, k * PATCH:(k + 1) * PATCH] = colour
    left = (4 * i) % (width - 8)
    frame[height // 2:height // 2 + 8, left:left + 8] = 255
    return frame


def tone(seconds, rate, channels=1):
    """[channels, samples]: ONSET seconds of silence, then TONE."""
    t = np.arange(round(seconds * rate)) / rate
    wave = np.where(t >= ONSET, AMPLITUDE * np.sin(2 * np.pi * TONE * (t - ONSET)), 0)
    return np.repeat(wave[None].astype(np.float32), channels, axis=0)


def encode(path, frames, fps=FPS, codec="libx264", options=None, container_options=None, audio=None,
           start=0):
    """Writes `frames` (and `audio`: codec, rate, samples [channels, n]) with PyAV, the streams starting
    `start` seconds in."""
    with av.open(str(path), "w", container_options=container_options or {}) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = frames[0].shape[1], frames[0].shape[0]
        video.pix_fmt = "yuv420p"
        video.options = options if options is not None else {"crf": "18"}
        sound = None
        if audio is not None:
            sound = out.add_stream(audio["codec"], rate=audio["rate"])
            sound.layout = "mono" if audio["samples"].shape[0] == 1 else "stereo"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = round(start * fps) + i, fractions.Fraction(1) / fps
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        if sound is not None:
            samples, rate = audio["samples"], audio["rate"]
            for k in range(0, samples.shape[1], 1000):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k:k + 1000]), format="fltp",
                                                   layout=sound.layout.name)
                chunk.sample_rate, chunk.pts = rate, round(start * rate) + k
                chunk.time_base = fractions.Fraction(1, rate)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def with_tone(path, audio_codec, rate=48000, seconds=2.0, start=0, channels=1, **kwargs):
    """A clip of `seconds` of pattern() frames with a TONE of the same length."""
    frames = [pattern(i) for i in range(round(seconds * FPS))]
    audio = {"codec": audio_codec, "rate": rate, "samples": tone(seconds, rate, channels)}
    return encode(path, frames, audio=audio, start=start, **kwargs)


def decode_frames(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def decode_audio(path):
    """(mono samples, sample rate, seconds from the first video frame to the tone's start, and to its end)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        to_mono = av.AudioResampler(format="fltp", layout="mono")
        frames = list(container.decode(stream))
        samples = np.concatenate([f.to_ndarray()[0] for frame in frames for f in to_mono.resample(frame)])
        first_audio = frames[0].time
    with av.open(str(path)) as container:
        first_video = next(container.decode(video=0)).time
    loud = np.flatnonzero(np.abs(samples) > AMPLITUDE / 2)
    onset, end = first_audio + loud[[0, -1]] / stream.sample_rate - first_video
    return samples.astype(np.float64), stream.sample_rate, onset, end


def dominant_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spectrum) * rate / len(samples)


def mae(a, b):
    return np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))


def check_matches(decoded, sources):
    """Each decoded frame is close to its source, and closer to it than to its neighbours."""
    assert len(decoded) == len(sources)
    for i, frame in enumerate(decoded):
        error = mae(frame, sources[i])
        assert error < MAE, f"frame {i}: {error:.2f}"
        for j in (i - 1, i + 1):
            if 0 <= j < len(sources):
                assert error < mae(frame, sources[j]), f"frame {i} is closer to source {j}"


# --- the reader --------------------------------------------------------------------------------------

def test_reader_streams_every_frame_in_order(tmp_path):
    sources = [pattern(i) for i in range(12)]
    path = encode(tmp_path / "clip.mp4", sources)
    with VideoReader(path) as reader:
        frames = list(reader)
        info, stopped = reader.info, reader.stopped
    assert (info.width, info.height, info.fps, info.frames, info.codec, info.audio) == (WIDTH, HEIGHT, FPS, 12,
                                                                                       "h264", None)
    assert info.duration == pytest.approx(12 / FPS)
    assert stopped is None
    assert all(f.dtype == np.uint8 and f.shape == (HEIGHT, WIDTH, 3) for f in frames)
    check_matches(frames, sources)


@pytest.mark.parametrize("name, codec, options", [
    ("clip.mp4", "libx264", None), ("clip.mov", "libx264", None), ("clip.mkv", "libx264", None),
    ("clip.avi", "mpeg4", {"b": "4M"}), ("clip.webm", "libvpx-vp9", {"crf": "10", "b": "0"}),
])
def test_reader_opens_each_container(tmp_path, name, codec, options):
    try:
        av.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV's FFmpeg has no {codec} encoder")
    sources = [pattern(i) for i in range(12)]
    path = encode(tmp_path / name, sources, codec=codec, options=options)
    with VideoReader(path) as reader:
        frames = list(reader)
        assert (reader.info.frames, reader.info.fps, reader.info.width, reader.info.height) == (12, FPS, WIDTH, HEIGHT)
        assert reader.stopped is None
    check_matches(frames, sources)


def test_reader_info_names_the_audio_codec(tmp_path):
    path = with_tone(tmp_path / "clip.mkv", "libopus")
    with VideoReader(path) as reader:
        assert reader.info.audio == "opus"
        assert reader.info.frames == 2 * FPS  # mkv keeps no count: from the duration


@pytest.mark.parametrize("name, expected", [
    ("clip.mp4", True), ("CLIP.MOV", True), ("a.b.mkv", True), ("x.Avi", True), ("y.webm", True),
    ("photo.jpg", False), ("clip.mp4.png", False), ("mp4", False), ("folder.mp4/photo.png", False),
])
def test_is_video_by_extension(tmp_path, name, expected):
    assert is_video(name) is expected
    assert is_video(tmp_path / name) is expected


def one_line_naming(error, name):
    message = str(error.value)
    assert "\n" not in message and name in message
    return message


def test_text_file_named_mp4_is_refused(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_text("not a video\n")
    with pytest.raises(VideoReadError) as error:
        VideoReader(path)
    assert "not a readable video" in one_line_naming(error, "clip.mp4")


def test_missing_file_and_audio_only_file_are_refused(tmp_path):
    with pytest.raises(VideoReadError) as error:
        VideoReader(tmp_path / "gone.mp4")
    one_line_naming(error, "gone.mp4")
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(tone(0.1, 48000, 2), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(VideoReadError) as error:
        VideoReader(path)
    assert "no video stream" in one_line_naming(error, "sound.mp4")


def half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def noise_frames(count, width=160, height=120):
    """Frames that do not compress, so the file's bytes are spread over its frames."""
    return [np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8) for i in range(count)]


def test_truncated_faststart_mp4_yields_the_frames_before_the_cut(tmp_path):
    sources = noise_frames(40)
    path = encode(tmp_path / "clip.mp4", sources, container_options={"movflags": "+faststart"})
    with av.open(str(path)) as container:
        extents = [(packet.pos, packet.size) for packet in container.demux(video=0) if packet.size]
    cut = path.stat().st_size // 2
    intact = sum(position + size <= cut for position, size in extents)  # frames wholly before the cut
    half(path)
    with VideoReader(path) as reader:
        assert reader.info.frames == 40  # the index, at the front, survived
        frames = list(reader)
        stopped = reader.stopped
    assert 0 < len(frames) == intact < 40
    match = re.fullmatch(r"(.*): decoding stopped at frame (\d+) \((.+)\): (\d+) frames read", stopped)
    assert match and match[1].endswith("clip.mp4") and int(match[2]) == int(match[4]) == len(frames)
    for frame, source in zip(frames, sources):
        assert mae(frame, source) < mae(frame, sources[-1])  # real frames, not garbage


def test_truncated_mp4_without_its_index_is_refused(tmp_path):
    path = half(encode(tmp_path / "clip.mp4", noise_frames(40)))
    with pytest.raises(VideoReadError) as error:
        VideoReader(path)
    one_line_naming(error, "clip.mp4")


def test_cut_before_the_first_frame_raises_on_iterating(tmp_path):
    path = encode(tmp_path / "clip.mp4", noise_frames(10), container_options={"movflags": "+faststart"})
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b"mdat") + 200])  # the index, and part of the first frame
    with VideoReader(path) as reader:
        with pytest.raises(VideoReadError) as error:
            list(reader)
    one_line_naming(error, "clip.mp4")


def test_a_stream_that_decodes_to_nothing_raises_on_iterating(tmp_path):
    source = encode(tmp_path / "whole.mkv", [pattern(i) for i in range(12)])
    path = tmp_path / "clip.mkv"
    with av.open(str(source)) as whole, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(whole.streams.video[0])
        for packet in whole.demux(video=0):
            if packet.size and not packet.is_keyframe:  # the frames, without the one they all refer to
                packet.stream = stream
                out.mux(packet)
    with VideoReader(path) as reader:
        assert reader.info.frames == 12
        with pytest.raises(VideoReadError) as error:
            list(reader)
    assert "no frame decoded" in one_line_naming(error, "clip.mkv")


# --- the writer --------------------------------------------------------------------------------------

def test_writer_round_trip_at_ntsc_rate(tmp_path):
    fps = fractions.Fraction(30000, 1001)
    sources = [pattern(i) for i in range(10)]
    with VideoWriter(tmp_path / "out.mp4", WIDTH, HEIGHT, fps) as writer:
        for frame in sources:
            writer.write(frame)
    path = tmp_path / "out.mp4"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == fps
        assert (stream.codec_context.name, stream.format.name) == ("h264", "yuv420p")
        times = [frame.time for frame in container.decode(stream)]
    assert times == pytest.approx([i / fps for i in range(10)], abs=1e-6)
    decoded = decode_frames(path)
    check_matches(decoded, sources)
    for k, colour in enumerate(PATCH_COLOURS):
        inside = np.stack([frame[MARGIN:PATCH - MARGIN, k * PATCH + MARGIN:(k + 1) * PATCH - MARGIN]
                           for frame in decoded]).astype(int)
        assert np.abs(inside - colour).max() <= PATCH_ERROR, colour
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: the index first
    with VideoReader(path) as reader:
        assert reader.info.fps == fps and reader.info.frames == 10
        check_matches(list(reader), sources)


def test_writer_takes_numpy_sizes_and_a_float_rate_as_its_decimal(tmp_path):
    with VideoWriter(tmp_path / "out.mp4", np.int64(WIDTH), np.int32(HEIGHT), 29.97) as writer:
        for i in range(3):
            writer.write(pattern(i))
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].average_rate == fractions.Fraction(2997, 100)


def test_writer_pads_odd_sizes_by_repeating_the_edge(tmp_path):
    sources = [pattern(i, 65, 49) for i in range(6)]
    with VideoWriter(tmp_path / "odd.mkv", 65, 49, FPS) as writer:
        for frame in sources:
            writer.write(frame)
    decoded = decode_frames(tmp_path / "odd.mkv")
    assert decoded[0].shape == (50, 66, 3)
    check_matches([frame[:49, :65] for frame in decoded], sources)
    padded = [np.pad(frame, ((0, 1), (0, 1), (0, 0)), mode="edge") for frame in sources]
    assert max(mae(d[-1], p[-1]) for d, p in zip(decoded, padded)) < MAE  # the added row
    assert max(mae(d[:, -1], p[:, -1]) for d, p in zip(decoded, padded)) < MAE  # the added column


def audio_packets(path):
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(audio=0) if packet.size]


@pytest.mark.parametrize("source, codec, rate, output, expected, copied, rate_out", [
    ("in.mp4", "aac", 48000, "out.mp4", "aac", True, 48000),
    ("in.mp4", "aac", 48000, "out.mkv", "aac", True, 48000),
    ("in.mp4", "aac", 44100, "out.mov", "aac", True, 44100),
    ("in.mkv", "libopus", 48000, "out.mp4", "aac", False, 48000),
    ("in.webm", "libopus", 48000, "out.mkv", "opus", True, 48000),
    # channels in no named order and a rate AAC has not (it gets the next one above)
    ("in.mkv", "pcm_s16le", 37800, "out.mp4", "aac", False, 44100),
    ("in.mov", "pcm_mulaw", 8000, "out.mkv", "aac", False, 8000),  # a codec mkv does not take
])
def test_writer_keeps_the_audio(tmp_path, source, codec, rate, output, expected, copied, rate_out):
    video = {"codec": "libvpx-vp9", "options": {"crf": "30", "b": "0"}} if source.endswith(".webm") else {}
    source = with_tone(tmp_path / source, codec, rate=rate, **video)
    with VideoReader(source) as reader, VideoWriter(tmp_path / output, WIDTH, HEIGHT, FPS, audio_from=source) as w:
        for frame in reader:
            w.write(frame)
    result = tmp_path / output
    with av.open(str(result)) as container:
        assert container.streams.audio[0].codec_context.name == expected
        assert container.streams.audio[0].sample_rate == rate_out
    assert (audio_packets(result) == audio_packets(source)) is copied
    samples_in, rate_in, onset_in, end_in = decode_audio(source)
    samples_out, rate_out, onset_out, end_out = decode_audio(result)
    assert abs(len(samples_out) / rate_out - len(samples_in) / rate_in) < 0.1
    assert dominant_hz(samples_out, rate_out) == pytest.approx(TONE, abs=1.0)
    assert (onset_out, end_out) == pytest.approx((onset_in, end_in), abs=SYNC)  # in sync, and all of it
    assert len(decode_frames(result)) == 2 * FPS


@pytest.mark.parametrize("source, codec", [("in.mp4", "aac"), ("in.mkv", "libopus")])  # copied, transcoded
def test_writer_keeps_the_sync_of_streams_that_start_late(tmp_path, source, codec):
    source = with_tone(tmp_path / source, codec, start=1.5)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        assert float(stream.start_time * stream.time_base) == pytest.approx(1.5, abs=0.05)
    with VideoReader(source) as reader, VideoWriter(tmp_path / "out.mp4", WIDTH, HEIGHT, FPS,
                                                    audio_from=source) as writer:
        for frame in reader:
            writer.write(frame)
    onset_in, end_in = decode_audio(source)[2:]
    onset_out, end_out = decode_audio(tmp_path / "out.mp4")[2:]
    assert onset_in == pytest.approx(ONSET, abs=0.05)
    assert (onset_out, end_out) == pytest.approx((onset_in, end_in), abs=SYNC)


def test_writer_without_audio_in_the_input_writes_none(tmp_path):
    source = encode(tmp_path / "silent.mp4", [pattern(i) for i in range(5)])
    with VideoWriter(tmp_path / "out.mp4", WIDTH, HEIGHT, FPS, audio_from=source) as writer:
        for frame in decode_frames(source):
            writer.write(frame)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1


def test_damaged_audio_ends_the_track_with_a_warning(tmp_path):
    source = with_tone(tmp_path / "in.mkv", "flac")
    with av.open(str(source)) as container:
        packets = [packet for packet in container.demux(audio=0) if packet.size]
        middle = packets[len(packets) // 2]
        payload, position = bytes(middle), middle.pos
    data = bytearray(source.read_bytes())
    start = data.index(payload[:32], position)
    data[start:start + len(payload)] = np.random.default_rng(0).integers(0, 256, len(payload), np.uint8).tobytes()
    source.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=r"in\.mkv: audio stopped"):
        with VideoWriter(tmp_path / "out.mp4", WIDTH, HEIGHT, FPS, audio_from=source) as writer:
            for i in range(2 * FPS):
                writer.write(pattern(i))
    samples, rate, _, _ = decode_audio(tmp_path / "out.mp4")
    assert 0.25 < len(samples) / rate < 1.75  # about the first half of the 2 s, ended at the damage
    assert dominant_hz(samples, rate) == pytest.approx(TONE, abs=2.0)
    assert len(decode_frames(tmp_path / "out.mp4")) == 2 * FPS


def test_the_output_appears_only_when_closed(tmp_path):
    final, partial = tmp_path / "out.mp4", tmp_path / ".out.partial.mp4"
    writer = VideoWriter(final, WIDTH, HEIGHT, FPS)
    assert writer.partial == str(partial)
    for i in range(30):
        writer.write(pattern(i))
        assert partial.exists() and not final.exists()
    assert writer.close() == str(final)
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]
    assert len(decode_frames(final)) == 30
    assert writer.close() == str(final)  # a second close changes nothing
    with pytest.raises(ValueError, match="after close"):
        writer.write(pattern(0))


def test_an_error_inside_the_writer_leaves_neither_file(tmp_path):
    final = tmp_path / "out.mp4"
    final.write_bytes(b"an earlier run's output")
    with pytest.raises(KeyError):
        with VideoWriter(final, WIDTH, HEIGHT, FPS) as writer:
            writer.write(pattern(0))
            raise KeyError("the pipeline failed")
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"] and final.read_bytes() == b"an earlier run's output"
    final.unlink()
    with pytest.raises(ValueError, match="no frame"):
        with VideoWriter(final, WIDTH, HEIGHT, FPS):
            pass
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("frame", [
    pattern(0).astype(np.float32), pattern(0)[:-1], pattern(0)[..., :2], pattern(0)[..., 0], pattern(0).tolist(),
    np.zeros((WIDTH, HEIGHT, 3), np.uint8),
])
def test_write_refuses_anything_but_the_frame_it_expects(tmp_path, frame):
    with VideoWriter(tmp_path / "out.mp4", WIDTH, HEIGHT, FPS) as writer:
        writer.write(pattern(0))
        with pytest.raises(ValueError, match=rf"uint8 RGB \[{HEIGHT}, {WIDTH}, 3\]"):
            writer.write(frame)


@pytest.mark.parametrize("name, width, height, fps", [
    ("out.avi", WIDTH, HEIGHT, FPS), ("out.webm", WIDTH, HEIGHT, FPS), ("out.mp4", 0, HEIGHT, FPS),
    ("out.mp4", WIDTH, 48.0, FPS), ("out.mp4", WIDTH, HEIGHT, 0),
])
def test_writer_refuses_what_it_cannot_make(tmp_path, name, width, height, fps):
    with pytest.raises(ValueError, match=re.escape(name)):
        VideoWriter(tmp_path / name, width, height, fps)
    assert os.listdir(tmp_path) == []


def test_audio_is_muxed_as_frames_are_written(tmp_path):
    # 12 s of uncompressed stereo (copied as it is into mkv) beside tiny frames: the file's bytes are
    # nearly all audio, so the partial file grows during writing only if the audio is muxed then
    seconds = 12
    source = with_tone(tmp_path / "in.mkv", "pcm_s16le", seconds=seconds, channels=2)
    writer = VideoWriter(tmp_path / "out.mkv", WIDTH, HEIGHT, FPS, audio_from=source)
    frame = pattern(0)
    for _ in range(seconds * FPS * 2 // 3):
        writer.write(frame)
    written = os.path.getsize(writer.partial)
    for _ in range(seconds * FPS // 3):
        writer.write(frame)
    final = os.path.getsize(writer.close())
    assert audio_packets(tmp_path / "out.mkv") == audio_packets(source)
    assert written > final / 3
