"""Settings objects, one shape for every method.

Each entry point's settings are one frozen dataclass -- :class:`nst_jax.gatys.StylizeConfig`,
:class:`nst_jax.adain.StylizeConfig`, :class:`nst_jax.feedforward.StylizeConfig` and
:class:`nst_jax.train.TrainConfig` -- that validates itself when built.  The entry points take one whole
(``config=``) and their keywords replace its fields by name (:func:`with_fields`); the CLI reads every
option's default from the dataclass (:func:`defaults`), so each default is written once.
"""

from __future__ import annotations

import dataclasses

from .errors import NSTError


def with_fields(config, fields: dict, what: str = "setting"):
    """``config`` with some fields replaced by name; an unknown name is a one-line error."""
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(config)})
    if unknown:
        raise NSTError(f"unknown {what}(s): {', '.join(unknown)}")
    return dataclasses.replace(config, **fields) if fields else config


def defaults(cls) -> dict:
    """``{field: default}`` of a settings dataclass."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def as_dict(config) -> dict:
    """A config's fields (shallow: arrays and solver objects stay as they are)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def freeze(config, *names: str) -> None:
    """In ``__post_init__``: store the named sequence fields as tuples (``None`` stays ``None``)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not isinstance(value, tuple):
            object.__setattr__(config, name, tuple(value))


def blend_weights(style_blend, k: int) -> list[float]:
    """One weight per style image, normalised to sum 1 (``None``: equal weights)."""
    if style_blend is None:
        return [1.0 / k] * k
    blend = [float(w) for w in style_blend]
    if len(blend) != k:
        raise NSTError(f"{len(blend)} style blend weights for {k} style images")
    check_blend(blend)
    return [w / sum(blend) for w in blend]


def check_blend(style_blend) -> None:
    if style_blend is not None and (min(style_blend, default=0) < 0 or sum(style_blend) <= 0):
        raise NSTError("style blend weights must be non-negative with a positive sum")
