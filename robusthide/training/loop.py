"""The one training loop: every model family plugs a model and a step into it.

A family (:class:`Family`) knows its networks, its data and its losses; it provides

* ``train_step(step) -> row``: optimisation step number ``step`` (0-based), a pure function of the seed, the
  step and the state in its checkpoint (so a resumed run is bitwise the run that was not stopped); the row
  (a JSON-able dict of metrics) is what the log gets;
* ``validate() -> row`` (optional): metrics on a fixed validation set; ``log_row(row)`` (optional): what
  only the logged steps measure;
* ``checkpoint() -> (tensors, doc)`` and ``restore(tensors, doc)``: everything a resume needs (networks,
  optimisers, controllers), tensors for safetensors and the rest for JSON;
* ``state``: a JSON-able dict saved in the checkpoint under ``"state"``; the loop keeps ``step`` (steps done)
  and ``train_seconds`` in it, the family anything it adapts as it trains (a loss-weight controller).

:class:`TrainLoop` owns the rest, the same for every family: step counting, the run loop, the progress bar,
log rows appended to ``<run>/metrics.jsonl`` (with throughput and training time), the validation and
checkpoint cadences and the final save (:mod:`robusthide.training.checkpoint`: atomic safetensors + JSON,
the step in both), a clean stop on SIGTERM / SIGINT (the step in flight ends, a checkpoint is written; a
second Ctrl-C interrupts at once; an exception leaves the last checkpoint as it was, never a half-done step),
exact resume, and under DDP the same stop on every rank. Seeding is the family's: its step draws from
:func:`robusthide.training.data.step_generator` (seed, step), so no random state but the family's own
(saved in its checkpoint when it uses torch's global generator) carries from one step to the next.
:func:`setup_runtime` is the device, thread-count, bf16 and DDP choice every family makes the same way.

Families: the watermark (:class:`robusthide.training.trainer.Trainer`), image hiding
(:class:`robusthide.imagehiding.train.ImageHideTrainer`) and the latent codec, decoder and LISO
(:mod:`robusthide.latent.train`).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from robusthide import RobustHideError
from robusthide.training.checkpoint import read_checkpoint, write_checkpoint
from robusthide.training.data import ImageBank
from robusthide.training.hardware import cpu_has_bf16

# -- runtime -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Runtime:
    """Where and how a family trains: the device, bf16 autocast on or off, and the DDP rank and world size."""

    device: torch.device
    amp: bool = False
    ddp: bool = False
    rank: int = 0
    world: int = 1


def _destroy_process_group() -> None:
    """Leave the process group while the interpreter is still whole. A process that exits without this can
    abort (SIGABRT): gloo's worker threads still hold tensors that are freed during interpreter shutdown."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def setup_runtime(device: str | None = None, threads: int | None = 0, amp: bool = False,
                  deterministic: bool = False, distributed: bool = False) -> Runtime:
    """The one place a trainer picks its device and process settings.

    ``device`` None: ``cuda:<LOCAL_RANK>`` when CUDA is available, else the CPU. ``threads`` > 0 sets torch's
    CPU threads. ``amp``: bf16 autocast, granted on CUDA and on CPUs with native bf16
    (:func:`robusthide.training.hardware.cpu_has_bf16`; elsewhere it is slower than fp32). ``deterministic``:
    cuDNN's deterministic algorithms. ``distributed``: join the process group that ``torchrun`` describes in
    the environment (``WORLD_SIZE`` > 1; NCCL on CUDA, else gloo). Denormals are flushed (they make CPU
    training crawl when losses get tiny)."""
    ddp = distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if ddp:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            atexit.register(_destroy_process_group)
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise RobustHideError(f"bad device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RobustHideError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA device")
    if threads:
        torch.set_num_threads(int(threads))
    if dev.type == "cuda" and deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.set_flush_denormal(True)
    rank = world = None
    if ddp:
        import torch.distributed as dist

        rank, world = dist.get_rank(), dist.get_world_size()
    return Runtime(dev, bool(amp) and (dev.type == "cuda" or cpu_has_bf16()), ddp, rank or 0, world or 1)


#: The sub-networks :func:`compile_nets` compiles when a model has them.
COMPILED_PARTS = ("encoder", "decoder", "discriminator")


def compile_nets(model: torch.nn.Module, parts: tuple[str, ...] = COMPILED_PARTS) -> list[str]:
    """Compile a model's networks in place with ``torch.compile`` (``nn.Module.compile``); return their names.

    Only the calls are compiled: parameters, buffers and ``state_dict`` keys stay as they are, so checkpoints
    are the same files and a run may resume with or without compilation. The nets compile at their first
    call (a minute or two on a CPU, once per process). MBRS's net at 64 px in bf16 then trains 1.27x faster per
    step on one CPU thread and about as fast on two (docs/results/reproduce-plan.md, "Compiled steps"): run
    columns side by side at one thread each. The float results differ from eager ones in their
    last bits, as any change of kernels does; runs stay deterministic. Raises :class:`RobustHideError` when
    this torch cannot compile (Inductor on a CPU needs a C++ compiler).
    """
    import shutil

    nets = {name: getattr(model, name) for name in parts if isinstance(getattr(model, name, None), torch.nn.Module)}
    if not nets:
        raise RobustHideError(f"--compile: the model has none of {', '.join(parts)} to compile")
    if not any(p.type == "cuda" for p in model.parameters()) and not (
            shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        raise RobustHideError("--compile needs a C++ compiler on the CPU (torch.compile's Inductor): install "
                              "g++ (Debian: apt install g++) or train without --compile")
    for net in nets.values():
        net.compile()
    return list(nets)


def image_banks(data: dict[str, Any], validation: bool, max_side: int,
                min_side: int = 128) -> tuple[ImageBank, ImageBank | None]:
    """The training photos of a config's ``data`` section (``train``; its train split with ``split``) and,
    with ``validation``, the validation photos: the ``val`` folder, or else the train folder's val split."""
    split = "train" if data.get("split") else None
    bank = ImageBank(data["train"], split, max_side=data.get("max_side", max_side), min_side=min_side)
    if not validation:
        return bank, None
    vdir, vsplit = (data["val"], None) if data.get("val") else (data["train"], "val" if data.get("split") else None)
    return bank, ImageBank(vdir, vsplit, max_side=data.get("max_side", max_side), min_side=min_side)


def cosine(step: int, steps: int, start: float, end: float) -> float:
    """Cosine decay from ``start`` at step 0 to ``end`` at ``steps`` (and after)."""
    frac = min(1.0, step / max(1, steps))
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * frac))


# -- the family interface ------------------------------------------------------------------------------------

class Family(ABC):
    """What a model family gives :class:`TrainLoop` (see the module docstring)."""

    #: JSON-able training state, saved in the checkpoint; the loop keeps ``step`` and ``train_seconds`` in it
    state: dict[str, Any]

    @abstractmethod
    def train_step(self, step: int) -> dict[str, Any]:
        """Run optimisation step ``step`` (0-based); return its log row."""

    def validate(self) -> dict[str, Any]:
        """Validation metrics (called every ``val_every`` steps when that is set)."""
        return {}

    @abstractmethod
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(tensors, JSON doc)`` to save; the loop adds ``step`` and ``state`` to the doc."""

    @abstractmethod
    def restore(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        """Load a checkpoint written from :meth:`checkpoint` (networks, optimisers, anything else)."""

    def log_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Complete a row that goes to the log (metrics too costly to measure at every step)."""
        return row

    def start(self) -> None:  # noqa: B027 (optional hook)
        """Called when a run starts (put the networks in training mode)."""

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        """What the progress bar shows of a logged row."""
        return {}


@dataclass
class LoopSettings:
    """How :class:`TrainLoop` runs a family. Cadences count completed steps (``n % every == 0``, and the last
    step); ``log_first``: log the steps whose 0-based index is a multiple instead (the first step is logged)."""

    run_dir: Path
    steps: int                       # the schedule's length: a run ends there (or at run(max_steps))
    log_every: int = 25              # 0: no log rows
    log_first: bool = False
    val_every: int = 0               # 0: no validation
    ckpt_every: int = 0              # 0: no checkpoint at all; else every K steps and at the end (or stop)
    keep: tuple[int, ...] = ()       # also keep the checkpoint at these step counts, as ``step-N`` (a fork point)
    batch: int | None = None         # images per step: logged rows get img_per_s
    metrics: str = "metrics.jsonl"   # the log file in run_dir
    config: dict[str, Any] | None = None  # written to run_dir/config.json when a run starts
    name: str = ""                   # progress-bar label
    progress: bool = True
    on_log: Callable[[dict[str, Any]], None] | None = None  # also gets every logged row (a CLI printer)


class TrainLoop:
    """Runs a :class:`Family`: see the module docstring."""

    def __init__(self, family: Family, settings: LoopSettings, runtime: Runtime | None = None):
        self.family = family
        self.settings = settings
        self.runtime = runtime or Runtime(torch.device("cpu"))
        self.run_dir = Path(settings.run_dir)
        self.state = family.state
        self.state.setdefault("step", 0)
        self.state.setdefault("train_seconds", 0.0)
        self.resumed = False
        self.stopped = False
        self._stop = False

    @property
    def rank0(self) -> bool:
        return self.runtime.rank == 0

    @property
    def step(self) -> int:
        """Steps done."""
        return int(self.state["step"])

    # -- checkpoints ---------------------------------------------------------------------------------------
    def check_fresh(self, what: str = "name") -> None:
        """Refuse to start a new run over a folder that holds a checkpoint."""
        if (self.run_dir / "latest.json").exists():
            raise RobustHideError(f"{self.run_dir} already has a checkpoint: use --resume, or another {what}")

    def read(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The run's ``latest`` checkpoint, ``(doc, tensors)``."""
        return read_checkpoint(self.run_dir)

    def resume(self, checkpoint: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None) -> dict[str, Any]:
        """Continue from the run's latest checkpoint (or the ``(doc, tensors)`` given): the family restores its
        part, the loop the state and the step. Returns the JSON document."""
        doc, tensors = checkpoint or self.read()
        self.family.restore(tensors, doc)
        self.state.update(doc.get("state") or {})
        if doc.get("step") is not None:
            self.state["step"] = int(doc["step"])
        self.resumed = True
        return doc

    def save(self, name: str = "latest") -> None:
        """Write the checkpoint ``name`` (rank 0 only)."""
        if self.rank0:
            tensors, doc = self.family.checkpoint()
            write_checkpoint(self.run_dir, tensors, {"step": self.step, **doc, "state": self.state}, name=name)

    # -- one step ------------------------------------------------------------------------------------------
    def advance(self) -> dict[str, Any]:
        """Run the next step of the family; count it and its time."""
        t0 = time.time()
        row = self.family.train_step(self.step)
        self.state["step"] = self.step + 1
        self.state["train_seconds"] = float(self.state["train_seconds"]) + time.time() - t0
        return row

    def log(self, row: dict[str, Any]) -> None:
        """Append a row to the run's log (rank 0) and hand it to ``on_log``."""
        if self.rank0:
            with open(self.run_dir / self.settings.metrics, "a") as f:
                f.write(json.dumps(row) + "\n")
            if self.settings.on_log:
                self.settings.on_log(row)

    def request_stop(self) -> None:
        """Stop after the step in flight (what SIGTERM and the first SIGINT do)."""
        self._stop = True

    def _handler(self, signum: int, frame: Any) -> None:
        if self._stop and signum == getattr(signal, "SIGINT", None):
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._stop = True

    def _install_signals(self) -> dict[int, Any]:
        old: dict[int, Any] = {}
        for name in ("SIGTERM", "SIGINT"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                prev = signal.getsignal(sig)
                if sig == signal.SIGINT and prev is signal.SIG_IGN:
                    continue  # started with Ctrl-C ignored (nohup, a background job): keep it so
                signal.signal(sig, self._handler)
                old[sig] = prev
            except ValueError:  # not the main thread: no handlers
                break
        return old

    def _should_stop(self) -> bool:
        if not self.runtime.ddp:
            return self._stop
        import torch.distributed as dist

        if getattr(self, "_stop_flag", None) is None:  # one tensor for the whole run: see _settle_ranks
            self._stop_flag = torch.zeros(1, device=self.runtime.device)
        self._stop_flag.fill_(1.0 if self._stop else 0.0)
        dist.all_reduce(self._stop_flag, op=dist.ReduceOp.MAX)  # every rank stops at the same step
        return bool(self._stop_flag.item() > 0)

    def _settle_ranks(self) -> None:
        """Under DDP, let every rank and gloo's worker threads finish at the end of a run.

        Gloo's worker thread frees a finished collective's work (and, through a barrier's list of prior work,
        the tensors of the collectives before it) only after the caller has its result. Where Python has
        dropped such a tensor, freeing it needs the GIL; a process already in interpreter shutdown then kills
        the thread inside a destructor and aborts (SIGABRT, "terminate called without an active exception";
        a core showed ``~AsyncBarrierWork -> ~AsyncAllreduceWork -> decref_pyobject``; 3 runs in 110 of a 2-rank
        test on a loaded 2-core machine, 0 in 180 with this, docs/scripts/ddp_stress.py). So the stop flag is
        one tensor Python keeps for the whole run, and after the final barrier the main thread sleeps briefly
        with the GIL released, so the worker threads free the rest while the interpreter is whole."""
        if self.runtime.ddp:
            import torch.distributed as dist

            dist.barrier()
            time.sleep(0.1)

    def _due(self, n: int, every: int, total: int) -> bool:
        return every > 0 and (n % every == 0 or n == total)

    # -- the run -------------------------------------------------------------------------------------------
    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train to ``steps`` (or ``max_steps``, the schedule still over ``steps``); return the last
        step's row (with the validation merged in when one ran at that step). Checkpoints at the cadence and
        when the run ends or stops."""
        from tqdm import tqdm

        s = self.settings
        total = s.steps if max_steps is None else min(s.steps, max_steps)
        if self.rank0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.step == 0 and not self.resumed:
                (self.run_dir / s.metrics).write_text("")  # a new run: no rows of an earlier attempt
            if s.config is not None:
                (self.run_dir / "config.json").write_text(json.dumps(s.config, indent=1))
        self._stop = self.stopped = False
        old = self._install_signals()
        self.family.start()
        bar = tqdm(total=total, initial=min(self.step, total), disable=not (s.progress and self.rank0),
                   desc=s.name, dynamic_ncols=True)
        last: dict[str, Any] = {}
        t0, n0 = time.time(), self.step
        try:
            while self.step < total:
                if self._should_stop():
                    self.stopped = True
                    break
                last = self.advance()
                n = self.step
                if self._due(n - 1 if s.log_first else n, s.log_every, total - 1 if s.log_first else total):
                    last = self.family.log_row(last)
                    if s.batch:
                        last["img_per_s"] = (n - n0) * s.batch / max(1e-9, time.time() - t0)
                    last["train_seconds"] = self.state["train_seconds"]
                    self.log(last)
                    bar.set_postfix(self.family.postfix(last))
                if self._due(n, s.val_every, total):
                    vrow = dict(step=n, **self.family.validate())
                    self.log(vrow)
                    last.update(vrow)
                if s.ckpt_every and n % s.ckpt_every == 0 and n < total:
                    self.save()
                if n in s.keep:
                    self.save(f"step-{n}")
                bar.update(1)
            if s.ckpt_every:
                self.save()  # the end of the run, or a clean stop
            self._settle_ranks()
        finally:
            bar.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return last
