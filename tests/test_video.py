"""Video: flow, trust weights and the warping error against closed forms; the temporal loss against float64
NumPy; `nst-jax video` on real files (H.264 with audio, frame folders), bad input, interruption and resume."""

import json
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from nst_jax import flow as fl
from nst_jax import gatys, metrics, video, videoio

from .helpers import assert_clean_error, run, run_here


def _texture(h, w, seed=0):
    import cv2

    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 1, 0, 1)


def _pan(n, h, w, dx=3, dy=1, seed=0):
    """Frames of a camera pan over a texture: frame t+1 at x shows frame t at x + (dx, dy)."""
    big = _texture(h + dy * n + 4, w + dx * n + 4, seed)
    return [big[dy * t: dy * t + h, dx * t: dx * t + w] for t in range(n)]


def test_warping_error_of_a_pan_is_its_closed_form():
    frames = _pan(4, 30, 40)
    flow, trust = fl.pan_flow((30, 40), 3, 1)
    assert trust.sum() == (30 - 1) * (40 - 3)  # what enters at the right and bottom edges is not trusted
    np.testing.assert_array_equal(fl.warp(frames[0], flow)[:-1, :-3], frames[0][1:, 3:])
    flows, weights = [None] + [flow] * 3, [None] + [trust] * 3
    assert metrics.warping_error(frames, flows, weights) < 1e-12  # the scene moved, nothing else
    delta = np.array([0.01, 0.02, 0.05])
    drifting = [f + t * delta for t, f in enumerate(frames)]  # each frame brighter by delta than the last
    np.testing.assert_allclose(metrics.warping_error(drifting, flows, weights), np.mean(delta ** 2),
                               rtol=1e-5)


def test_flow_recovers_a_pan_and_the_check_drops_what_it_cannot_trust():
    a, b = _pan(2, 64, 80)
    for method in fl.FLOWS:
        backward, trust = fl.reliable_flow(b, a, method)  # from frame 1 to frame 0: (3, 1) everywhere
        inner = backward[8:-8, 8:-8]
        assert np.abs(inner - [3, 1]).mean() < 0.15, method
        assert trust[:, -3:].max() == 0 and trust[-1].max() == 0  # leaves the frame
        assert trust[8:-8, 8:-8].mean() > 0.9
    # the forward-backward check (Ruder et al.'s inequality) by hand: a backward flow of (4, 0) and a forward
    # flow that does not come back in the left half
    backward = np.zeros((20, 30, 2), np.float32)
    backward[..., 0] = 4
    forward = np.zeros_like(backward)
    forward[:, 15:, 0] = -4
    c = fl.reliability(backward, forward)
    total = fl.warp(forward, backward) + backward
    expect = (np.sum(total ** 2, -1) <= 0.01 * (np.sum(fl.warp(forward, backward) ** 2, -1) + 16) + 0.5)
    np.testing.assert_array_equal(c[:, 2:-8] > 0, expect[:, 2:-8])
    assert c[:, :10].max() == 0 and c[:, 16:-4].min() == 1


def test_long_term_weights_count_each_pixel_by_the_closest_frame():
    c1, c2, c3 = np.array([1., 0, 0, 1]), np.array([1., 1, 0, 0]), np.array([1., 1, 1, 0])
    out = fl.long_term_weights([c1, c2, c3])
    np.testing.assert_array_equal(out, [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]])


def test_temporal_loss_is_ruders_weighted_mean_in_pixel_units(params):
    rng = np.random.default_rng(0)
    x = rng.random((1, 32, 32, 3)).astype(np.float32)
    content = rng.random((1, 32, 32, 3)).astype(np.float32)
    cfg = gatys.Config()
    targets = gatys.compute_targets(params, content, [content], [1.0], cfg)
    previous = rng.random((2, 1, 32, 32, 3)).astype(np.float32)
    trust = (rng.random((2, 1, 32, 32, 1)) > 0.3).astype(np.float32)
    w = gatys.LossWeights(temporal=250.0).as_arrays(5)
    temporal = {"previous": previous, "weights": trust}
    total, terms = gatys.gatys_loss(params, x, {**targets, "temporal": temporal}, w, cfg)
    plain, plain_terms = gatys.gatys_loss(params, x, targets, w, cfg)
    ref = sum(np.mean(trust[k].astype(np.float64) * (255.0 * (x.astype(np.float64) - previous[k])) ** 2)
              for k in range(2))
    np.testing.assert_allclose(float(terms["temporal"]), 250.0 * ref, rtol=1e-5)
    np.testing.assert_allclose(float(total), float(plain) + 250.0 * ref, rtol=1e-5)
    assert "temporal" not in plain_terms


def test_network_blend_minimises_fidelity_plus_temporal_loss():
    rng = np.random.default_rng(1)
    out = rng.random((6, 7, 3)).astype(np.float32)
    previous = [rng.random((6, 7, 3)).astype(np.float32) for _ in range(2)]
    trust = [(rng.random((6, 7)) > 0.5).astype(np.float32) for _ in range(2)]
    x = video._blend(out, previous, trust, 2.0).astype(np.float64)
    grad = 2 * (x - out) + sum(2 * 2.0 * c[..., None] * (x - p) for p, c in zip(previous, trust, strict=True))
    assert np.abs(grad).max() < 1e-5  # the per-pixel objective's gradient vanishes: its minimiser


def _write_clip(path, frames, fps=12):
    """An H.264 clip of ``frames`` with an AAC tone."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        a = out.add_stream("aac", rate=22050)
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray((f * 255).astype(np.uint8), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        tone = (0.2 * np.sin(np.arange(22050 // 2) / 7.0)).astype(np.float32)[None]
        for i in range(0, tone.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i:i + 1024]), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = 22050, i
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode():
            out.mux(p)


def test_video_file_keeps_frames_size_rate_and_audio(model_file, tmp_path):
    _write_clip(tmp_path / "clip.mp4", _pan(6, 48, 64))
    r = run("video", tmp_path / "clip.mp4", "-o", tmp_path / "out.mp4", "--method", "fast", "--model",
            model_file, "--quiet")
    assert r.returncode == 0, r.stderr
    import av

    with av.open(str(tmp_path / "clip.mp4")) as a, av.open(str(tmp_path / "out.mp4")) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        assert (vb.codec_context.name, vb.width, vb.height) == ("h264", va.width, va.height)
        assert vb.average_rate == va.average_rate == Fraction(12)
        assert sum(1 for _ in b.decode(vb)) == 6
        assert len(b.streams.audio) == 1
    audio = []
    for name in ("clip.mp4", "out.mp4"):
        with av.open(str(tmp_path / name)) as c:
            audio.append([bytes(p) for p in c.demux(c.streams.audio[0]) if p.size])
    assert audio[0] and audio[0] == audio[1]  # passed through unchanged
    assert not (tmp_path / "out.mp4.work").exists()


def test_video_bad_input_is_one_line_and_writes_nothing(model_file, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, f in enumerate(_pan(3, 24, 32)):
        Image.fromarray((f * 255).astype(np.uint8)).save(frames / f"{t:02d}.png")
    (tmp_path / "text.mp4").write_text("not a video\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "style.txt").write_text("no")
    style = frames / "00.png"
    out = tmp_path / "o"
    cases = [
        ((tmp_path / "text.mp4", "-o", out, "--method", "fast"), "cannot be read as a video"),
        ((tmp_path / "empty", "-o", out, "--method", "fast"), "holds no image files"),
        ((frames, tmp_path / "style.txt", "-o", out, "--method", "adain"), "not an image"),
        ((frames, style, "-o", out, "--method", "gatys", "--model", model_file), "--model is an option of"),
        ((frames, style, "-o", out, "--method", "fast"), "takes no style image"),
        ((frames, "-o", out, "--method", "fast", "--iters", "3"), "--iters is an option of --method gatys"),
        ((frames, "-o", out, "--method", "fast", "--dtype", "bfloat16"), "--dtype is an option of"),
        ((frames, "-o", out, "--method", "gatys"), "needs one or more style images"),
        ((frames, "-o", tmp_path / "o.png", "--method", "fast"), "names an image file"),
        ((frames, "-o", out, "--method", "fast", "--no-temporal", "--temporal-weight", "2"), "--no-temporal"),
        ((frames, style, "-o", out, "--batch", "2"), "--batch goes with frame by frame"),
        ((frames, "-o", out, "--method", "fast", "--fps", "30"), "the output is a folder"),
        ((frames, "-o", out, "--method", "fast", "--temporal-frames", "0"), "positive frame distances"),
        ((frames, style, "-o", out, "--mask", style), "--mask places two styles"),
        ((frames, style, style, "-o", out, "--mask", tmp_path / "style.txt"), "not an image"),
        ((frames, style, style, "-o", out, "--mask", style, "--method", "adain"), "--mask is an option of"),
        ((frames, style, style, "-o", out, "--mask", style, "--mask-mode", "edge"), "invalid choice"),
    ]
    for k, (args, message) in enumerate(cases):  # the first as a real process, the rest in this one
        r = (run if k == 0 else run_here)("video", *args)
        assert_clean_error(r, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "frames", "style.txt", "text.mp4"]


def test_video_folder_names_a_bad_frame_and_resumes_after_an_interrupt(model_file, tmp_path, monkeypatch,
                                                                       capsys):
    from nst_jax.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for t, f in enumerate(_pan(5, 24, 32)):
        Image.fromarray((f * 255).astype(np.uint8)).save(frames / f"f{t}.png")
    (frames / "e.png").write_bytes(b"\x89PNG broken")  # the first file in order: named, the rest done
    args = ["video", str(frames), "-o", str(tmp_path / "whole"), "--method", "fast", "--model",
            str(model_file), "--quiet", "--no-compile-cache"]
    assert main(args) == 1  # the bad frame is named, the others are done
    err = capsys.readouterr().err
    assert "e.png" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == [f"f{t}.png" for t in range(5)]

    save = videoio.WorkFolder.save

    def interrupted(self, i, frame):
        if i == 2:
            raise KeyboardInterrupt
        save(self, i, frame)

    args[3] = str(tmp_path / "again")
    monkeypatch.setattr(videoio.WorkFolder, "save", interrupted)
    assert main(args) == 130
    assert not (tmp_path / "again").exists()
    kept = sorted(p.name for p in (tmp_path / "again.work").iterdir())
    assert kept == ["000001.png", "000002.png", "run.json"]
    monkeypatch.setattr(videoio.WorkFolder, "save", save)
    assert main(args) == 1  # without --resume: the work folder is named, nothing is lost
    assert "--resume" in capsys.readouterr().err
    record = tmp_path / "again.work" / "run.json"
    saved = json.loads(record.read_text())
    assert main(args + ["--resume", "--temporal-weight", "0.3"]) == 1  # another setting is named
    assert "(temporal_weight)" in capsys.readouterr().err
    del saved["dtype"]  # a work folder from a version without an option: the option was not given there
    record.write_text(json.dumps(saved))
    assert main(args + ["--resume"]) == 1  # (the bad frame again)
    for t in range(5):
        a = np.asarray(Image.open(tmp_path / "whole" / f"f{t}.png"), np.int16)
        b = np.asarray(Image.open(tmp_path / "again" / f"f{t}.png"), np.int16)
        assert np.abs(a - b).max() <= 1  # the resumed frames continue from the saved (8-bit) results
    assert not (tmp_path / "again.work").exists()


@pytest.mark.slow
def test_gatys_video_is_steadier_than_frame_by_frame(params, tmp_path):
    """Ruder et al.'s method on a pan: each frame from the previous result warped, with the temporal loss,
    against every frame on its own (the same iterations); the warping error with the pan's exact flow."""
    frames = _pan(4, 48, 64, seed=3)
    style = _texture(64, 64, seed=9)[..., ::-1] ** 2
    flow, trust = fl.pan_flow((48, 64), 3, 1)
    conf = gatys.StylizeConfig(size=None, iters=40)
    runs = {}
    for temporal in (False, True):
        vconf = video.VideoConfig(temporal=temporal, iters=40, first_iters=40)
        runs[temporal] = list(video.stylize_video(iter(frames), [style], vconf, conf, weights=params))
    err = {k: metrics.warping_error(v, [None] + [flow] * 3, [None] + [trust] * 3) for k, v in runs.items()}
    assert err[True] < 0.5 * err[False], err
    grams = metrics.style_grams(params, style)
    dist = {k: np.mean([metrics.style_distance(params, f, grams) for f in v]) for k, v in runs.items()}
    assert dist[True] < 1.2 * dist[False], dist  # as stylised as frame by frame
