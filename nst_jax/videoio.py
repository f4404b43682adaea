"""Frames in and out: video files through PyAV (FFmpeg's libraries) and folders of images, streamed one frame
at a time (memory stays flat over a clip of any length).

A run writes each finished frame as a PNG into a work folder beside the output (``OUT.work/``); the output
itself appears only at the end, all at once: a folder of frames renamed into place, or a video encoded from
the work folder into a temporary file and renamed (audio passed through unchanged from the input video).  The
work folder is what an interrupted run keeps and ``--resume`` continues from.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import NSTError

# output extension -> (encoder, pixel format); H.264 needs even frame sizes (4:2:0 chroma)
VIDEO_FORMATS = {".mp4": ("libx264", "yuv420p"), ".mov": ("libx264", "yuv420p"),
                 ".mkv": ("libx264", "yuv420p"), ".webm": ("libvpx-vp9", "yuv420p"),
                 ".avi": ("mpeg4", "yuv420p")}
FOLDER_FPS = 25  # the frame rate of a video made from a folder of frames, unless one is given
WORK_SUFFIX = ".work"


@dataclass(frozen=True)
class Source:
    """What a clip is: a video file or a folder of frames (``files``, sorted), its frame count, frame rate
    (``None`` for a folder), (height, width) and whether it has audio."""

    path: Path
    kind: str
    frames: int
    fps: Fraction | None
    shape: tuple[int, int]
    audio: bool = False
    files: tuple = ()


def _av_error(path: Path, e: Exception) -> NSTError:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    return NSTError(f"{path} cannot be read as a video ({reason})")


def open_source(path) -> Source:
    """Check a clip before any work (an :class:`NSTError` says what is wrong): a folder must hold image files;
    a file must be a video whose first frame decodes."""
    from . import image as im

    p = Path(path).expanduser()
    if not p.exists():
        raise NSTError(f"{p} does not exist")
    if p.is_dir():
        files = im.image_files(p)
        if not files:
            raise NSTError(f"{p} holds no image files")
        for f in files:  # the frame size: the first frame that reads (an unreadable one is named later)
            try:
                first = im.load_image(f)
                break
            except NSTError:
                continue
        else:
            raise NSTError(f"no image in {p} can be read")
        return Source(p, "folder", len(files), None, first.shape[:2], False, tuple(files))
    if p.stat().st_size == 0:
        raise NSTError(f"{p} is empty")
    import av

    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise NSTError(f"{p} has no video stream")
            v = c.streams.video[0]
            count = 0
            for packet in c.demux(v):  # counting packets reads the file, not the pictures
                if packet.size:
                    count += 1
            if not count:
                raise NSTError(f"{p} has no frames")
            c.seek(0)
            first = next(c.decode(v), None)
            if first is None:
                raise NSTError(f"{p} has no frames that decode")
            fps = v.average_rate or v.guessed_rate or Fraction(FOLDER_FPS)
            shape = (first.height, first.width)
            return Source(p, "video", count, Fraction(fps), shape, bool(c.streams.audio))
    except NSTError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, StopIteration) as e:
        raise _av_error(p, e) from None


def read_frames(source: Source, on_error=None):
    """The clip's frames, one at a time, as ``(name, frame)``: the output frame's file name (the input frame's
    stem from a folder, else its number) and (H, W, 3) float32 RGB in [0, 1].  A frame file of a folder that
    cannot be read is passed to ``on_error(path, error)`` and left out (without it, the error is raised)."""
    from . import image as im

    if source.kind == "folder":
        for f in source.files:
            try:
                yield f"{f.stem}.png", im.load_image(f)
            except NSTError as e:
                if on_error is None:
                    raise
                on_error(f, e)
        return
    import av

    try:
        with av.open(str(source.path)) as c:
            for i, frame in enumerate(c.decode(c.streams.video[0])):
                yield f"frame_{i + 1:06d}.png", frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0
    except av.FFmpegError as e:
        raise _av_error(source.path, e) from None


def is_video_path(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_FORMATS


def check_output(path) -> Path:
    """The output, checked before any work: a video file (by its extension, :data:`VIDEO_FORMATS`, with an
    encoder in this FFmpeg) or a folder of PNG frames (which must not exist, or be empty)."""
    out = Path(path).expanduser()
    if not out.parent.is_dir():
        raise NSTError(f"output folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise NSTError(f"cannot write to folder {out.parent}")
    if is_video_path(out):
        import av

        codec = VIDEO_FORMATS[out.suffix.lower()][0]
        if codec not in av.codecs_available:
            raise NSTError(f"this FFmpeg has no {codec} encoder for {out.suffix} files; write .mp4 or a "
                           "folder")
        if out.is_dir():
            raise NSTError(f"output {out} is a folder")
        return out
    from PIL import Image

    if out.suffix.lower() in Image.registered_extensions():
        raise NSTError(f"{out} names an image file: name a video file ({', '.join(VIDEO_FORMATS)}) or a "
                       "folder for the frames")
    if out.is_file():
        raise NSTError(f"{out} is a file: name a video file ({', '.join(VIDEO_FORMATS)}) or a folder")
    if out.is_dir() and any(out.iterdir()):
        raise NSTError(f"output folder {out} is not empty")
    return out


def even_shape(shape) -> tuple[int, int]:
    """``shape`` rounded down to even sides (what 4:2:0 video needs)."""
    return max(2, shape[0] - shape[0] % 2), max(2, shape[1] - shape[1] % 2)


class WorkFolder:
    """``OUT.work/``: each finished frame as ``000001.png`` ... and ``run.json`` (what the run is: the input,
    the method and its settings), so that an interrupted run can be resumed with the same settings only."""

    def __init__(self, out: Path, run: dict, resume: bool):
        self.out = out
        self.path = out.with_name(out.name + WORK_SUFFIX)
        self.run = run
        meta = self.path / "run.json"
        if self.path.exists():
            if not resume:
                raise NSTError(f"{self.path} holds the frames of an interrupted run: continue it with "
                               "--resume, or remove it")
            try:
                saved = json.loads(meta.read_text())
            except (OSError, ValueError):
                raise NSTError(f"{self.path} is not a work folder of nst-jax video (no readable run.json)") \
                    from None
            # an option the interrupted run's version did not record was not given (None) there
            diff = sorted(k for k in set(saved) | set(run) if saved.get(k) != run.get(k))
            if diff:
                raise NSTError(f"--resume with other settings than the interrupted run ({', '.join(diff)}); "
                               f"use the same ones, or remove {self.path}")
        elif resume:
            raise NSTError(f"nothing to resume: {self.path} does not exist")
        else:
            self.path.mkdir()
            meta.write_text(json.dumps(run, indent=1) + "\n")

    def discard(self) -> None:
        """Remove the work folder (a run that finished no frame)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def frame_path(self, i: int) -> Path:
        return self.path / f"{i + 1:06d}.png"

    def done(self) -> int:
        """How many frames are finished (consecutive from the first)."""
        n = 0
        while self.frame_path(n).is_file():
            n += 1
        return n

    def save(self, i: int, frame) -> None:
        from . import image as im

        im.save_image(self.frame_path(i), frame)

    def load(self, i: int) -> np.ndarray:
        from . import image as im

        return im.load_image(self.frame_path(i))

    def finish(self, names: list[str], fps, audio: Source | None = None, log=None) -> Path:
        """Make the output from the finished frames, named ``names`` in a folder output (a folder renamed into
        place, or a video encoded into a temporary file and renamed, with ``audio``'s sound), then remove the
        work folder."""
        count = len(names)
        (self.path / "run.json").unlink()
        if not is_video_path(self.out):
            tmp = self.out.with_name(f".{self.out.name}.partial")
            tmp.mkdir(exist_ok=True)
            for i, name in enumerate(names):
                os.replace(self.frame_path(i), tmp / name)
            if self.out.is_dir():
                self.out.rmdir()  # checked empty before the run
            os.replace(tmp, self.out)
            shutil.rmtree(self.path)
            return self.out
        tmp = self.out.with_name(f".{self.out.stem}.partial{self.out.suffix}")
        try:
            encode(tmp, (self.load(i) for i in range(count)), fps, audio if audio and audio.audio else None,
                   log)
            os.replace(tmp, self.out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            (self.path / "run.json").write_text(json.dumps(self.run, indent=1) + "\n")
            raise
        shutil.rmtree(self.path)
        return self.out


def encode(path: Path, frames, fps, audio_from: Source | None = None, log=None) -> None:
    """Encode ``frames`` ((H, W, 3) in [0, 1]) into the video file ``path`` at ``fps``; with ``audio_from``,
    its first audio stream's packets copied unchanged (a codec the container cannot hold is named and left
    out)."""
    import av

    from . import image as im

    codec, pix_fmt = VIDEO_FORMATS[path.suffix.lower()]
    with av.open(str(path), "w") as out:
        stream = audio = None
        for frame in frames:
            if stream is None:  # every stream is added before the first packet is written
                stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001 * 1000))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt
                if codec == "libx264":
                    stream.options = {"crf": "16", "preset": "medium"}
                audio = _audio_stream(out, audio_from, log) if audio_from is not None else None
            vf = av.VideoFrame.from_ndarray(im.to_uint8(frame), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        if stream is None:
            raise NSTError("no frames to write")
        for packet in stream.encode():
            out.mux(packet)
        if audio is not None:
            with av.open(str(audio_from.path)) as c:
                for packet in c.demux(c.streams.audio[0]):
                    if packet.dts is None:
                        continue
                    packet.stream = audio
                    out.mux(packet)


def _audio_stream(out, source: Source, log):
    """An output stream for ``source``'s first audio stream, copied as it is; ``None`` (and a line to ``log``)
    when the container cannot hold its codec."""
    import av

    with av.open(str(source.path)) as c:
        a = c.streams.audio[0]
        try:
            return out.add_stream_from_template(a)
        except (av.FFmpegError, ValueError) as e:
            if log:
                log(f"audio ({a.codec_context.name}) cannot go into {Path(out.name).suffix}; left out ({e})")
            return None
