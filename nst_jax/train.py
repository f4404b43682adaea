"""One optax training loop for the feed-forward methods (AdaIN decoders, Johnson et al. transform nets).

A *task* says what is trained: ``init(key) -> params``, ``loss(params, frozen, batch) -> (loss, metrics)``
(pure, jit-able; ``frozen`` holds the non-trained arrays such as the VGG-19 encoder), ``batches(start_step,
shard)`` (an iterator of dicts of uint8 NHWC NumPy arrays, this process's slice of each global batch),
``export(params, path, meta)`` (writes the deployable model file) and ``config`` (a JSON-able dict that a
resumed run must match).

:func:`train` runs it:

* one jit-compiled step (loss, gradient, Adam update) with the state donated;
* data parallel over every device through ``jax.sharding``: a 1-D mesh ``("data",)``, the batch sharded
  along it, parameters and optimiser state replicated; with ``distributed=True`` it first calls
  ``jax.distributed.initialize()`` and each process feeds its own slice of the global batch
  (``jax.make_array_from_process_local_data``);
* orbax checkpoints every ``ckpt_every`` steps and at the end (parameters, optimiser state, step, and a
  JSON record of the configuration); ``resume=True`` continues from the latest one exactly -- the data
  order is a pure function of ``(seed, step)`` (see :mod:`nst_jax.data`) and so is the step's randomness;
* metrics as JSON lines in ``ckpt_dir/metrics.jsonl``, a loss curve ``ckpt_dir/loss_curve.png`` and the
  exported model ``ckpt_dir/<task.export_name>`` refreshed at every checkpoint;
* training that accumulates across runs: ``init=(params, meta)`` starts a new run from an exported network
  (a fresh optimiser state), and the exported file's ``cumulative`` record (steps, images seen, wall
  seconds, runs) adds this run to the ones that made the starting network.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .config import with_fields as replace_fields
from .errors import NSTError
from .runinfo import DeferredInterrupt, machine


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int = 8
    learning_rate: float = 1e-4
    lr_decay: float = 5e-5  # inverse-time decay: lr / (1 + lr_decay * step), as pytorch-AdaIN
    warmup: int = 0  # linear learning-rate warm-up over this many steps (for runs that start from a network)
    clip_grad_norm: float = 0.0  # > 0: gradients clipped to this global norm before Adam (0: off)
    seed: int = 0
    ckpt_every: int = 500
    log_every: int = 10
    keep: int = 3  # checkpoints kept


def with_fields(config: TrainConfig, fields: dict) -> TrainConfig:
    """``config`` with some fields replaced by name (a trainer's ``steps=...`` keywords); an unknown name
    is a one-line error."""
    return replace_fields(config, fields, "training setting")


@jax.tree_util.register_dataclass
@dataclass
class TrainState:
    """What a training step carries and a checkpoint holds: the network's ``params``, the optimiser's
    state ``opt`` and the ``step`` count (a pytree).  Checkpoints store it as the dict :meth:`as_dict`, so
    that a checkpoint does not depend on this class."""

    params: Any
    opt: Any
    step: Any

    @classmethod
    def create(cls, params, opt) -> TrainState:
        return cls(params, opt.init(params), jnp.zeros((), jnp.int32))

    def as_dict(self) -> dict:
        return {"params": self.params, "opt": self.opt, "step": self.step}


@dataclass
class Progress:
    step: int
    steps: int
    metrics: dict
    seconds: float  # wall time of this run so far (excluding compile)
    images_per_second: float | None  # None before any step was timed (the first one compiles)


def schedule(cfg: TrainConfig):
    """Learning rate at a step: ``lr * min(1, (step + 1) / warmup) / (1 + lr_decay * step)``."""
    def lr(step):
        ramp = 1.0 if cfg.warmup <= 0 else jnp.minimum(1.0, (step + 1.0) / cfg.warmup)
        return ramp * cfg.learning_rate / (1.0 + cfg.lr_decay * step)
    return lr


def optimizer(cfg: TrainConfig):
    """Adam on :func:`schedule`; with ``clip_grad_norm`` > 0 the gradient is first scaled down to that global
    norm when it is longer (optax.clip_by_global_norm)."""
    import optax  # here, not at import: the inference commands import this module for TrainConfig

    adam = optax.adam(schedule(cfg))
    return optax.chain(optax.clip_by_global_norm(cfg.clip_grad_norm), adam) if cfg.clip_grad_norm else adam


def make_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def _global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(tree)))


def make_train_step(task, opt, mesh: Mesh):
    """The compiled step: ``(state, frozen, batch) -> (state, metrics)`` on a :class:`TrainState`, which is
    donated."""
    replicated = NamedSharding(mesh, P())

    import optax

    def step(state, frozen, batch):
        # images come as uint8; anything else (e.g. a style index per example) as it is
        batch = {k: v.astype(jnp.float32) / 255.0 if v.dtype == jnp.uint8 else v for k, v in batch.items()}
        (loss, metrics), grads = jax.value_and_grad(task.loss, has_aux=True)(state.params, frozen, batch)
        updates, opt_state = opt.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)
        # the gradient's global norm before any clipping: spikes show here first (--clip-grad-norm)
        return (TrainState(params, opt_state, state.step + 1),
                {"loss": loss, **metrics, "grad_norm": _global_norm(grads)})

    return jax.jit(step, donate_argnums=(0,), out_shardings=(replicated, replicated))


def _global_batch(local: dict, sharding: NamedSharding, batch_size: int) -> dict:
    out = {}
    for k, v in local.items():
        shape = (batch_size,) + v.shape[1:]
        out[k] = jax.make_array_from_process_local_data(sharding, v, shape)
    return out


def _local_copy(tree):
    """Host copy of replicated arrays (also on multi-host runs, where they are not fully addressable)."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a.addressable_data(0)), tree)


def _plot(records: list[dict], path: Path, title: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    if not records:
        return
    steps = [r["step"] for r in records]
    keys = [k for k in ("loss", "content", "style", "tv") if k in records[0]]
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in keys:
        ax.plot(steps, [r[k] for r in records], label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted total; terms unweighted)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _read_metrics(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if rec.get("step", 0) <= upto:
            out.append(rec)
    return out


def _write_lines_atomic(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


def cumulative_record(meta: dict | None) -> dict:
    """What made a network so far, from an exported file's metadata: ``{"steps", "images", "wall_seconds",
    "runs"}`` (all zero for ``None``).  Files written before the record existed count as one run."""
    if not meta:
        return {"steps": 0, "images": 0, "wall_seconds": 0.0, "runs": []}
    if "cumulative" in meta:
        return dict(meta["cumulative"])
    step = int(meta.get("step", 0))
    batch = int(meta.get("train_config", {}).get("batch_size", 0))
    wall = float(meta.get("wall_seconds", 0.0))
    run = {"steps": step, "batch_size": batch, "wall_seconds": wall, "platform": meta.get("platform"),
           "task_config": meta.get("task_config")}
    return {"steps": step, "images": step * batch, "wall_seconds": wall, "runs": [run]}


def check_config(cfg: TrainConfig, devices: int) -> None:
    """One line for a setting that cannot train."""
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.ckpt_every < 1 or cfg.log_every < 1:
        raise NSTError("steps, batch size, checkpoint interval and log interval must be positive")
    if cfg.warmup < 0:
        raise NSTError(f"warm-up must be 0 or more steps, not {cfg.warmup}")
    if not cfg.clip_grad_norm >= 0:
        raise NSTError(f"the gradient clipping norm must be positive (or 0: off), not {cfg.clip_grad_norm}")
    if cfg.batch_size % devices:
        raise NSTError(f"batch size {cfg.batch_size} is not divisible by the {devices} devices")


def create_train_state(task, cfg: TrainConfig, opt, init: tuple[dict, dict] | None) -> TrainState:
    """A fresh state: ``task.init`` (seeded by ``cfg.seed``), or the parameters of an exported network
    ``init`` (which must have the task's architecture), with a fresh optimiser state."""
    if init is None:
        return TrainState.create(task.init(jax.random.key(cfg.seed)), opt)
    params = jax.tree_util.tree_map(jnp.asarray, init[0])
    expected = jax.eval_shape(task.init, jax.random.key(cfg.seed))
    leaves, wanted = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(expected)
    if (jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(expected)
            or any(a.shape != b.shape for a, b in zip(leaves, wanted, strict=True))):
        raise NSTError("the network to start from does not have this task's architecture")
    return TrainState.create(params, opt)


# what a resumed run must share with the checkpoint it continues (the rest may change, e.g. steps)
RESUME_KEYS = ("batch_size", "learning_rate", "lr_decay", "warmup", "clip_grad_norm", "seed")


def restore_checkpoint(manager, state: TrainState, record: dict, cfg: TrainConfig, say):
    """``(state, step, wall_seconds)`` of the latest checkpoint (``(state, 0, 0.0)`` when there is none),
    refused when it was made by another task or with other :data:`RESUME_KEYS`; ``record`` takes the
    checkpoint's cumulative record of the network it started from."""
    import orbax.checkpoint as ocp

    latest = manager.latest_step()
    if latest is None:
        say(f"no checkpoint in {manager.directory}: starting from step 0")
        return state, 0, 0.0
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state.as_dict())
    restored = manager.restore(latest, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    meta = restored["meta"]
    for key in ("task", "task_config"):
        if meta.get(key) != record[key]:
            raise NSTError(f"cannot resume: the checkpoint in {manager.directory} was made with {key} "
                           f"{meta.get(key)}, this run asks for {record[key]}")
    if "init_cumulative" in meta:  # the run that made this checkpoint started from a network
        record["init_cumulative"] = meta["init_cumulative"]
    old = meta["train_config"]
    for key in RESUME_KEYS:
        if old.get(key, 0) != getattr(cfg, key):
            raise NSTError(f"cannot resume: the checkpoint was trained with {key}={old.get(key, 0)}, this "
                           f"run asks for {getattr(cfg, key)}")
    say(f"resumed from step {int(latest)} in {manager.directory}")
    return TrainState(**restored["state"]), int(latest), float(meta.get("wall_seconds", 0.0))


class Checkpoints:
    """Checkpoints (orbax) and what each one refreshes: the exported model with its cumulative record (the
    runs that made it), and the loss curve."""

    def __init__(self, task, cfg: TrainConfig, ckpt_dir: Path, record: dict, devices: int, resume: bool):
        import orbax.checkpoint as ocp

        self.task, self.cfg, self.dir, self.record, self.devices = task, cfg, ckpt_dir, record, devices
        root = ckpt_dir / "checkpoints"
        if not resume and root.exists() and any(root.iterdir()):
            raise NSTError(f"{ckpt_dir} already holds checkpoints: pass --resume to continue them, or choose "
                           "an empty --ckpt-dir")
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.manager = ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(
            max_to_keep=cfg.keep, create=True, enable_async_checkpointing=False))

    def save(self, state: TrainState, step: int, wall: float, records: list[dict]) -> None:
        import orbax.checkpoint as ocp

        meta = {**self.record, "step": step, "wall_seconds": wall, "devices": self.devices,
                "platform": jax.devices()[0].platform, "processes": jax.process_count()}
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state.as_dict()),
                                                        meta=ocp.args.JsonSave(meta)), force=True)
        if jax.process_index() != 0:
            return
        before = self.record.get("init_cumulative") or cumulative_record(None)
        this_run = {"steps": step, "batch_size": self.cfg.batch_size, "wall_seconds": wall,
                    "platform": meta["platform"], "devices": self.devices, "machine": machine(),
                    "task_config": self.task.config}
        cumulative = {"steps": before["steps"] + step,
                      "images": before["images"] + step * self.cfg.batch_size,
                      "wall_seconds": before["wall_seconds"] + wall,
                      "runs": list(before["runs"]) + [this_run]}
        export_meta = {**meta, "final_metrics": records[-1] if records else None, "cumulative": cumulative}
        self.task.export(_local_copy(state.params), self.dir / self.task.export_name, export_meta)
        _plot(records, self.dir / "loss_curve.png", f"{self.task.name}: training loss")

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


class MetricsLog:
    """The step metrics averaged over each window of ``log_every`` steps, with the window's throughput (the
    first step, which compiles, left out), appended to ``metrics.jsonl`` as each window closes."""

    def __init__(self, path: Path, start: int, cfg: TrainConfig):
        self.path, self.start, self.cfg = path, start, cfg
        self.records = _read_metrics(path, start)
        if jax.process_index() == 0:
            _write_lines_atomic(path, self.records)
        self.window: list[dict] = []
        self.t_window = time.perf_counter()

    def add(self, step: int, metrics: dict, wall: float, skipped: int):
        """The record of a window that closes at ``step`` (else ``None``)."""
        if step == self.start + 1:  # the first call compiled: the window's clock starts after it
            self.t_window = time.perf_counter()
        self.window.append(metrics)
        if step % self.cfg.log_every and step != self.cfg.steps:
            return None
        elapsed = time.perf_counter() - self.t_window
        n_steps = len(self.window) - (1 if step - len(self.window) == self.start else 0)
        # None (JSON null) until a step has been timed: the first one compiles
        ips = n_steps * self.cfg.batch_size / elapsed if elapsed > 0 and n_steps > 0 else None
        rec = {"step": step, **{k: float(np.mean([m[k] for m in self.window])) for k in self.window[0]},
               "lr": float(schedule(self.cfg)(step - 1)), "wall_seconds": round(wall, 2),
               "images_per_second": None if ips is None else round(ips, 3), "skipped": skipped}
        self.records.append(rec)
        if jax.process_index() == 0:
            with open(self.path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.window, self.t_window = [], time.perf_counter()
        return rec


def train(task, cfg: TrainConfig, ckpt_dir: str | os.PathLike, *, resume: bool = False,
          init: tuple[dict, dict] | None = None, distributed: bool = False,
          callback: Callable[[Progress], None] | None = None,
          log: Callable[[str], None] | None = None) -> dict:
    """Train ``task`` for ``cfg.steps`` steps (in total, counting resumed ones).  Returns a summary dict.

    ``init``: ``(params, meta)`` of an exported network to start from instead of ``task.init`` (ignored when
    resuming from a checkpoint, which holds its own parameters).

    Ctrl-C (SIGINT) stops after the current step, saves a checkpoint and re-raises KeyboardInterrupt.
    """
    say = log or (lambda msg: None)
    if distributed:
        from .tiling import initialize_distributed

        initialize_distributed()
    ckpt_dir = Path(ckpt_dir).expanduser().absolute()
    mesh = make_mesh()
    n_dev = mesh.devices.size
    check_config(cfg, n_dev)
    record = {"task": task.name, "task_config": task.config, "train_config": asdict(cfg)}
    if init is not None:
        record["init_cumulative"] = cumulative_record(init[1])
    checkpoints = Checkpoints(task, cfg, ckpt_dir, record, n_dev, resume)
    opt = optimizer(cfg)
    state, start, wall_before = create_train_state(task, cfg, opt, init), 0, 0.0
    if resume:
        state, start, wall_before = restore_checkpoint(checkpoints.manager, state, record, cfg, say)
    if start >= cfg.steps:
        say(f"already at step {start} >= {cfg.steps}: nothing to do")
    replicated = NamedSharding(mesh, P())
    state, frozen = jax.device_put(state, replicated), jax.device_put(task.frozen, replicated)
    step_fn = make_train_step(task, opt, mesh)
    metrics_log = MetricsLog(ckpt_dir / "metrics.jsonl", start, cfg)
    # Ctrl-C: finish the current step, save a checkpoint, stop
    interrupt = DeferredInterrupt(second_aborts=False, enabled=jax.process_index() == 0).install()
    batches = task.batches(start, (jax.process_index(), jax.process_count()))
    t_run, t_compile, step, interrupted = time.perf_counter(), 0.0, start, False
    try:
        while step < cfg.steps:
            batch = _global_batch(next(batches), NamedSharding(mesh, P("data")), cfg.batch_size)
            t_step = time.perf_counter()
            state, metrics = step_fn(state, frozen, batch)
            metrics = {k: float(v) for k, v in _local_copy(metrics).items()}
            if step == start:  # the first call compiles
                t_compile = time.perf_counter() - t_step
            if not all(np.isfinite(v) for v in metrics.values()):
                raise NSTError(f"training diverged at step {step + 1} (loss {metrics['loss']}); lower the "
                               "learning rate or resume from an earlier checkpoint")
            step += 1
            wall = wall_before + time.perf_counter() - t_run
            rec = metrics_log.add(step, metrics, wall, int(getattr(batches, "skipped", 0)))
            if rec is not None and callback:
                callback(Progress(step, cfg.steps, rec, wall, rec["images_per_second"]))
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                checkpoints.save(state, step, wall, metrics_log.records)
            if interrupt.requested:
                interrupted = True
                break
        if interrupted and step % cfg.ckpt_every and step != cfg.steps:
            checkpoints.save(state, step, wall_before + time.perf_counter() - t_run, metrics_log.records)
    finally:
        if hasattr(batches, "close"):
            batches.close()
        checkpoints.close()
        interrupt.restore()
    records = metrics_log.records
    summary = {"start_step": start, "step": step, "compile_seconds": t_compile,
               "wall_seconds": wall_before + time.perf_counter() - t_run, "devices": n_dev,
               "final": records[-1] if records else None, "ckpt_dir": str(ckpt_dir),
               "model": str(ckpt_dir / task.export_name), "params": _local_copy(state.params)}
    if interrupted:
        raise KeyboardInterrupt(summary)
    return summary
