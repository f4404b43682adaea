"""The run contract (nst_jax.run): what every method gets from the one loop, checked with a method whose
result is known in closed form (the photo's negative, pushed past the valid range), so that grouping,
batching, errors, clipping, colour preservation, reports and Ctrl-C are the loop's and nothing else's."""

import numpy as np
import pytest

from nst_jax import image as im
from nst_jax import run
from nst_jax.errors import NSTError
from nst_jax.tiling import Footprint


class Negative(run.Method):
    """1.2 - x: a known picture with values above 1 (clipped by the loop)."""

    name = "negative"
    footprint = Footprint(per_pixel=100.0)

    def __init__(self, preserve_color=None, fixed_style=False, interrupt_at=None):
        self.preserve_color, self.fixed_style, self.interrupt_at = preserve_color, fixed_style, interrupt_at
        self.calls = []

    def prepare(self, index, item):
        if min(item.shape[:2]) < 4:
            raise NSTError(f"picture {index} is too small")
        return run.Job(index, item, item.shape)

    def run(self, jobs, placement, callback):
        self.calls.append([j.index for j in jobs])
        raw = [1.2 - j.content for j in jobs]
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise run.Interrupted(raw, [{"iterations": 3}] * len(jobs))
        return [(r, {"timings": {"work": 0.0}, "note": i}) for i, r in enumerate(raw)]


def pictures():
    rng = np.random.default_rng(0)
    shapes = [(8, 6), (5, 7), (8, 6), (2, 9), (8, 6)]  # three of one shape, one of another, one too small
    return [rng.random(s + (3,)).astype(np.float32) for s in shapes]


def test_every_picture_is_finished_by_the_loop():
    items = pictures()
    method = Negative()
    results = list(run.run_pictures(method, items, batch=2))
    assert results[0].index == 3 and "too small" in str(results[0].error)  # named first, the rest run
    done = {r.index: r for r in results[1:]}
    assert sorted(done) == [0, 1, 2, 4]
    # same-shaped pictures together, at most `batch` at a time, never a shape mixed in
    assert method.calls == [[0, 2], [4], [1]]
    for i, r in done.items():
        expected = np.clip(1.2 - items[i], 0, 1)
        np.testing.assert_array_equal(r.image, expected)
        outside = np.mean(1.2 - items[i] > 1 + 1 / 255)
        assert r.report["pixels_outside_range"] == pytest.approx(outside)
        assert r.report["method"] == "negative" and r.report["height"] == items[i].shape[0]
        assert r.report["batch"] == (2 if i in (0, 2) else 1) and r.report["seconds"] >= 0
    assert done[4].report["batches"] == 2 and done[1].report["batches"] == 3


def test_colour_preservation_is_the_loops():
    items = pictures()[:1]
    lum = next(run.run_pictures(Negative("luminance"), items)).image
    np.testing.assert_allclose(lum, im.transfer_luminance(np.clip(1.2 - items[0], 0, 1), items[0]), atol=1e-6)
    fixed = next(run.run_pictures(Negative("histogram", fixed_style=True), items)).image
    np.testing.assert_allclose(fixed, im.match_histogram(np.clip(1.2 - items[0], 0, 1), items[0]), atol=1e-6)
    # a method that reads style images recolours them itself: its output is left as it is
    plain = next(run.run_pictures(Negative("histogram"), items)).image
    np.testing.assert_array_equal(plain, np.clip(1.2 - items[0], 0, 1))


def test_ctrl_c_hands_over_the_running_batch_finished():
    items = pictures()
    results = []
    with pytest.raises(run.Interrupted) as e:
        for r in run.run_pictures(Negative(interrupt_at=2), items, batch=2):
            results.append(r)
    assert [r.index for r in results] == [3, 0, 2]  # the error and the first batch were yielded before
    np.testing.assert_array_equal(e.value.image, np.clip(1.2 - items[4], 0, 1))
    assert e.value.report["iterations"] == 3 and e.value.report["batch"] == 1


def test_bad_batch_and_collect():
    with pytest.raises(NSTError, match="at least 1"):
        list(run.run_pictures(Negative(), pictures(), batch=0))
    with pytest.raises(NSTError, match="too small"):
        run.collect(run.run_pictures(Negative(), pictures()), single=False)
    images, report = run.collect(run.run_pictures(Negative(), pictures()[:2]), single=False)
    assert [i.shape for i in images] == [(8, 6, 3), (5, 7, 3)] and report["images"] == 2
