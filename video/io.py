"""Video files in and out, frame by frame, with PyAV (FFmpeg in-process): `VideoReader`, `VideoWriter`.

The reader yields each frame as uint8 RGB and reports, rather than raises, a decoding error after the
first frame, so a damaged clip still gives the frames before the damage. The writer encodes H.264 under
a temporary name and keeps the input's first audio track, muxed as the frames arrive.
"""
import contextlib
import dataclasses
import fractions
import math
import numbers
import os
import warnings

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

# What test.py treats as a video rather than a photo (compared in lower case).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# Containers the writer produces: those H.264 (and so browsers' playback of mp4) can go in.
OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv")
# Containers whose index the writer moves to the front, so a browser starts playing before the end arrives.
FASTSTART_EXTENSIONS = (".mp4", ".mov")
# x264's constant rate factor: 18 is about where it becomes visually lossless, so the encoding adds no
# artefacts of its own on top of what the super-resolution changed.
CRF = 18
# x264's speed/compression trade: "veryfast" encodes several times faster than x264's default "medium"
# with files no larger at the same CRF and fidelity a little below it, small beside what the
# super-resolution changes; "ultrafast" is faster again but makes files several times larger.
PRESET = "veryfast"
# Frames up to 4096x2304 (H.264 level 5.1's largest): what the hardware decoders of browsers and phones
# play; a larger video is written all the same, but may not play everywhere.
PLAYABLE_PIXELS = 4096 * 2304
# A file whose frames end this share short of its header's count was cut off (a Matroska or WebM file cut
# short ends quietly, without a decoding error); less is the count's rounding (duration x rate).
SHORT_BY = 0.05
# Audio codecs copied into each container unchanged: those browsers play from mp4/mov. A container not
# listed (mkv) takes any codec its muxer accepts; any other codec is transcoded to AAC.
AUDIO_COPY = {".mp4": ("aac", "mp3"), ".mov": ("aac", "mp3")}
# The transcoded AAC track's bit rate: generous for FFmpeg's own AAC encoder (which needs more bits than
# the best encoders), and still small beside the video at CRF 18.
AAC_BIT_RATE = 192_000
# BT.709, limited range, tagged in the stream: what HD video is, what players assume of untagged HD, and
# what the reader converts back with (to_ndarray follows the stream's tags). The writer converts with
# swscale's matrix code and tags the stream with FFmpeg's colour-space code: both are 1 for BT.709.
COLOUR = {"colorspace": Colorspace.ITU709, "color_range": ColorRange.MPEG,
          "color_primaries": ColorPrimaries.BT709, "color_trc": ColorTrc.BT709}


def is_video(path):
    """True when `path`'s extension is one of VIDEO_EXTENSIONS, in any case."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


class VideoReadError(ValueError):
    """A file that is not a readable video; the message is one line naming the file."""


def _reason(error):
    """FFmpeg's reason for `error`, on one line."""
    return " ".join(str(getattr(error, "strerror", None) or error).split())


def _open_input(path):
    """An av input container on `path`, or VideoReadError."""
    try:
        return av.open(path)
    except av.FFmpegError as error:
        raise VideoReadError(f"{path}: not a readable video ({_reason(error)})") from error


@dataclasses.dataclass
class VideoInfo:
    """What a video's header says of it."""
    width: int
    height: int
    fps: fractions.Fraction  # the video stream's average frame rate (guessed rate as fallback)
    frames: int | None  # the container's frame count, else duration * fps rounded, else None
    duration: float | None  # seconds
    audio: str | None  # the first audio stream's codec name, or None
    codec: str  # the video stream's codec name


def _video_info(path, container, stream):
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise VideoReadError(f"{path}: not a readable video (no frame rate)")
    if stream.duration is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = None
    if stream.frames:
        frames = stream.frames
    else:
        frames = None if duration is None else round(duration * fps)
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return VideoInfo(stream.codec_context.width, stream.codec_context.height, fractions.Fraction(fps), frames,
                     duration, audio, stream.codec_context.name)


class VideoReader:
    """Streams a video's frames as uint8 RGB [H, W, 3], never holding more than the decoder does.

    Frames are converted with the colour matrix and range the stream is tagged with (BT.601 when
    untagged). Rotation metadata (phones' portrait clips) is ignored: frames come as stored.
    `info` is read from the header on opening; `stopped` is set by iterating.
    """

    def __init__(self, path):
        """Opens `path`; VideoReadError if it is not a readable video (not a video, no video stream, cut-off header)."""
        self.path = os.fspath(path)
        self.stopped = None
        self._container = _open_input(self.path)
        try:
            if not self._container.streams.video:
                raise VideoReadError(f"{self.path}: not a readable video (no video stream)")
            self._stream = self._container.streams.video[0]
            self.info = _video_info(self.path, self._container, self._stream)
        except BaseException:
            self._container.close()
            raise

    def __iter__(self):
        """Yields the frames in order (iterate once). A decoding or demuxing error after frame k ends the iteration and
        sets `stopped` to a one-line warning, as does a stream ending SHORT_BY short of its header's count;
        an error before any frame raises VideoReadError, as does a stream that ends without one."""
        count = 0
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    yield frame.to_ndarray(format="rgb24")
                    count += 1
        except av.FFmpegError as error:
            if count == 0:
                raise VideoReadError(f"{self.path}: not a readable video ({_reason(error)})") from error
            # the frames the decoder already holds came from intact packets
            with contextlib.suppress(av.FFmpegError):
                for frame in self._stream.codec_context.decode(None):
                    yield frame.to_ndarray(format="rgb24")
                    count += 1
            self.stopped = f"{self.path}: decoding stopped at frame {count} ({_reason(error)}): {count} frames read"
            return
        if count == 0:
            raise VideoReadError(f"{self.path}: not a readable video (no frame decoded)")
        if self.info.frames and count < self.info.frames * (1 - SHORT_BY):
            self.stopped = (f"{self.path}: decoding stopped at frame {count} (the file ends before the "
                            f"{self.info.frames} frames its header gives): {count} frames read")

    def close(self):
        """Closes the file; the reader yields nothing after."""
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _play_time(item):
    """Seconds at which a packet or frame plays, or -inf when it carries no timestamp (muxed at once)."""
    timestamp = item.pts if item.pts is not None else getattr(item, "dts", None)
    return -math.inf if timestamp is None or item.time_base is None else float(timestamp * item.time_base)


def _move_earlier(item, seconds):
    """Moves a packet's or frame's timestamps `seconds` earlier."""
    ticks = round(seconds / item.time_base)
    if item.pts is not None:
        item.pts -= ticks
    if isinstance(item, av.Packet) and item.dts is not None:
        item.dts -= ticks


class _AudioTrack:
    """The first audio track of a video file, fed to an output container as the video advances.

    Packets are copied as they are when the output container takes their codec (AUDIO_COPY), else
    decoded and encoded to AAC. They are read, one ahead, from a demuxer kept open on the file: each
    `mux_until` muxes those that play before a time, so memory does not grow with the clip. Times are
    moved so that the file's first video frame plays at 0, as the writer's first frame does: a file
    whose streams start later (a clip cut from a broadcast, say) keeps its sync. An error reading or
    decoding the file ends the track there, with a RuntimeWarning; errors writing the output are raised.
    """

    def __init__(self, path, container, output, extension):
        self.path = path
        self._input = container
        self._output = output
        source = container.streams.audio[0]
        video = container.streams.video[0] if container.streams.video else None
        self._start = video.start_time * video.time_base if video is not None and video.start_time else 0
        codec = source.codec_context.name
        copy = codec in AUDIO_COPY[extension] if extension in AUDIO_COPY else True
        self._encoder = None
        if copy:
            try:
                self._stream = output.add_stream_from_template(source)
            except ValueError:  # the muxer does not take this codec
                copy = False
        if not copy:
            # the input's rate if AAC has it, else the next above (no frequency lost), else AAC's highest
            rates = av.Codec("aac", "w").audio_rates
            rate = min((r for r in rates if r >= source.sample_rate), default=max(rates))
            self._stream = self._encoder = output.add_stream("aac", rate=rate)
            # FFmpeg's standard layout for that many channels ("<n>c"): an input may leave their order
            # unnamed, which the AAC encoder refuses
            self._encoder.layout = f"{source.layout.nb_channels}c"
            self._encoder.bit_rate = AAC_BIT_RATE
        self._items = self._read(source)
        self._next = None

    @classmethod
    def of(cls, path, output, extension):
        """The track of `path` (VideoReadError if it is no readable file), or None when it has no audio."""
        container = _open_input(path)
        if not container.streams.audio:
            container.close()
            return None
        try:
            return cls(path, container, output, extension)
        except BaseException:
            container.close()
            raise

    def _read(self, source):
        """Yields the packets to copy, or the decoded frames to encode, up to the end or the first error."""
        try:
            for packet in self._input.demux(source):
                # the demuxer's last packet is empty: it flushes the decoder, and muxers ignore it
                if self._encoder is not None:
                    yield from packet.decode()
                else:
                    yield packet
        except av.FFmpegError as error:
            warnings.warn(f"{self.path}: audio stopped ({_reason(error)}): the output's audio ends there",
                          RuntimeWarning, stacklevel=2)

    def mux_until(self, seconds):
        """Muxes everything that plays before `seconds`."""
        while True:
            if self._next is None:
                self._next = next(self._items, None)
            if self._next is None or _play_time(self._next) - self._start >= seconds:
                return
            item, self._next = self._next, None
            if self._start:
                _move_earlier(item, self._start)
            if self._encoder is not None:
                self._output.mux(self._encoder.encode(item))
            else:
                item.stream = self._stream  # the muxer rescales its timestamps to the output stream's time base
                self._output.mux(item)

    def finish(self):
        """Muxes the rest of the track, including any beyond the last video frame, and flushes the encoder."""
        self.mux_until(math.inf)
        if self._encoder is not None:
            self._output.mux(self._encoder.encode(None))

    def close(self):
        self._input.close()


class VideoWriter:
    """H.264 (libx264), yuv420p, plays in browsers; written to a temporary name beside `path` and renamed
    to `path` only by close(), so a partial output never looks complete.

    The container follows `path`'s extension (OUTPUT_EXTENSIONS); mp4 and mov get their index at the
    front. Frames play at the constant rate `fps` (a Fraction such as 30000/1001 stays exact), in BT.709
    (COLOUR). yuv420p needs even sides: an odd width or height is padded by repeating the last column or
    row, so the file is one pixel wider or taller than asked. `audio_from` (a video file, normally the
    input) gives its first audio track, copied or transcoded to AAC (AUDIO_COPY) and muxed as frames are
    written; the whole track is kept, also any part after the last frame.
    """

    def __init__(self, path, width, height, fps, audio_from=None, crf=CRF):
        """Creates the temporary file `.<name>.partial<ext>` beside `path` with the streams' headers."""
        self.path = os.fspath(path)
        folder, name = os.path.split(self.path)
        stem, extension = os.path.splitext(name)
        if extension.lower() not in OUTPUT_EXTENSIONS:
            raise ValueError(f"{self.path}: the writer makes {', '.join(OUTPUT_EXTENSIONS)} files, not {extension!r}")
        if not all(isinstance(side, numbers.Integral) and side > 0 for side in (width, height)):
            raise ValueError(f"{self.path}: width and height must be positive integers, not {width!r} x {height!r}")
        # through str: a float rate such as 29.97 becomes 2997/100, not the float's exact binary value,
        # which FFmpeg's 32-bit rationals cannot hold; a Fraction or int stays as it is
        self.width, self.height, self.fps = int(width), int(height), fractions.Fraction(str(fps))
        if self.fps <= 0:
            raise ValueError(f"{self.path}: fps must be positive, not {fps!r}")
        self.partial = os.path.join(folder, f".{stem}.partial{extension}")
        self._frames = 0
        self._audio = None
        self._closed = False
        options = {"movflags": "+faststart"} if extension.lower() in FASTSTART_EXTENSIONS else {}
        self._output = av.open(self.partial, "w", container_options=options)
        try:
            self._video = self._output.add_stream("libx264", rate=self.fps)
            self._video.width, self._video.height = self.width + self.width % 2, self.height + self.height % 2
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": PRESET}
            for key, value in COLOUR.items():
                setattr(self._video.codec_context, key, int(value))
            if audio_from is not None:
                self._audio = _AudioTrack.of(os.fspath(audio_from), self._output, extension.lower())
            self._output.start_encoding()  # writes the header: the temporary file exists from now on
        except BaseException:
            self.abort()
            raise

    def write(self, frame):
        """Encodes `frame`, uint8 RGB [height, width, 3] (anything else: ValueError), and muxes the audio up
        to its end."""
        if self._output is None:
            raise ValueError(f"{self.path}: write after close() or abort()")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"{self.path}: a frame must be uint8 RGB [{self.height}, {self.width}, 3], not {got}")
        if self.height % 2 or self.width % 2:
            frame = np.pad(frame, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=COLOUR["colorspace"], dst_color_range=COLOUR["color_range"])
        picture.pts, picture.time_base = self._frames, 1 / self.fps
        self._output.mux(self._video.encode(picture))
        self._frames += 1
        if self._audio is not None:
            self._audio.mux_until(float(self._frames / self.fps))

    def close(self):
        """Flushes the encoder, finishes the audio, renames the temporary file to `path`; returns `path`
        (again on a second call). On any error (also: no frame written) the temporary file is deleted and
        the error raised."""
        if self._output is None:
            if self._closed:
                return self.path
            raise ValueError(f"{self.path}: close after the writer was aborted")
        try:
            if self._frames == 0:
                raise ValueError(f"{self.path}: no frame was written")
            self._output.mux(self._video.encode(None))
            if self._audio is not None:
                self._audio.finish()
                self._audio.close()
            self._output.close()
            os.replace(self.partial, self.path)
        except BaseException:
            self.abort()
            raise
        self._output, self._closed = None, True
        return self.path

    def abort(self):
        """Closes everything and deletes the temporary file, raising nothing."""
        for closable in (self._audio, self._output):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
        self._audio = self._output = None
        with contextlib.suppress(OSError):
            os.remove(self.partial)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()
