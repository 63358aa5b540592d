"""``neuroemu.simulate``: the one orchestrator that trains, evaluates, records and reports.

A run evaluates the chip as programmed (epoch 0), then trains it epoch by epoch on chip with
its learning rule (:mod:`neuroemu.learning`), evaluating it on the test part after every
epoch, optionally evaluates the trained chip at times after programming, and writes all of
it to a run file as it goes (:mod:`neuroemu.io.hdf5`). The ``neuroemu simulate`` command,
every point of a sweep and the examples call it; a notebook calls it the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import failpoints
from ..chip import BaseChip, Chip
from ..errors import InputError
from ..io.datasets import Dataset, load_dataset
from ..io.hdf5 import RunWriter, check_output_path, now
from ..io.runs import Run, open_run
from ..learning.train import trace_phases, train_epoch
from ..units import parse_duration
from ..version import __version__
from .evaluate import InferenceReport, evaluate, infer_at
from .progress import Event, Listener, quiet

#: Samples settled at once in a test pass, unless the caller says otherwise.
BATCH_SIZE = 256


def simulate(
    chip: str | os.PathLike[str] | BaseChip,
    *,
    dataset: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
    resume: str | os.PathLike[str] | None = None,
    infer_at: Sequence[float | str] | float | str | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    progress: Listener | None = None,
    test_every: int = 1,
) -> Run:
    """Run a chip over a data set: evaluate it, train it on chip for ``epochs`` epochs
    (evaluating it after each), and return the :class:`~neuroemu.io.runs.Run`.

    Parameters
    ----------
    chip
        A chip spec file, the name of a library chip, or a built chip (which is trained in
        place).
    dataset
        ``mnist5k`` (embedded), ``fashion-mnist`` (Debian's ``dataset-fashion-mnist``) or a
        folder of MNIST-format IDX files; default: the spec's ``training.dataset``, else
        ``mnist5k``.
    epochs
        Epochs to train (default: the spec's ``training.epochs``; 0: only evaluate).
    limit
        Use only the first ``limit`` samples of each part of the data set.
    seed
        Build the chip from this seed instead of the spec's (only with a spec file or
        name: a built chip has its seed).
    out, force
        Write a run file (HDF5) as the run goes; ``force`` overwrites an existing one.
    resume
        Continue the interrupted training run in this run file (same chip, seed, data set
        and limit); the result is the one an uninterrupted run gives.
    infer_at
        After training, evaluate at these times after programming, with programming noise,
        drift and read noise: seconds, or text such as ``"1h"``, one time or a list of
        them (``["1h", "1y"]``, or ``"1h,1y"``).
    batch_size
        Samples settled at once in a test pass (default 256).
    dtype
        ``"float64"`` (default) or ``"float32"`` for the engine's arrays.
    progress
        Called with an :class:`~neuroemu.run.progress.Event` at every step of the work.
    test_every
        Evaluate on the test part as programmed (epoch 0), after every ``test_every``-th
        epoch and after the last (the epochs a run file and the history hold); 0: after
        the last epoch only (a sweep point's way: its figures are the trained chip's).
    """
    started = now()
    report = progress or quiet
    if resume is not None and out is not None:
        raise InputError(
            "resume and out given together: resume (--resume) goes on writing the run file "
            "it names; drop out (--out)"
        )
    for name, value in (("dataset", dataset), ("out", out), ("resume", resume)):
        if value is not None and not isinstance(value, str | os.PathLike):
            raise InputError(f"{name}: expected a name or a path, got {type(value).__name__}")
    if not isinstance(force, bool):
        raise InputError(f"force: expected True or False, got {force!r}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress: expected a function of an Event, got {progress!r}")
    if out is not None:
        check_output_path(out, force)
    built, chip_file = _build(chip, seed)
    training = built.spec.training
    epochs = _whole("epochs", epochs, 0, training.epochs if training else 0)
    if (epochs > 0 or resume is not None) and training is None:
        raise InputError(f"chip {built.name}: has no training: section, so it cannot train")
    source = dataset if dataset is not None else (training.dataset if training else None)
    data = _matching_dataset(source or None, built)
    if limit is not None:
        data = data.subset(_whole("limit", limit, 1), _whole("limit", limit, 1))
    samples = training.trace_samples if training is not None else []
    if samples and max(samples) >= len(data.x_test):
        raise InputError(
            f"training.trace_samples: index {max(samples)} is beyond the "
            f"{len(data.x_test)} test samples of {data.name}"
        )
    batch = _whole("batch_size", batch_size, 1, BATCH_SIZE)
    test_every = _whole("test_every", test_every, 0)
    kind = _dtype(dtype)
    if kind is np.float32 and getattr(built, "has_wires", False):
        raise InputError(
            f"dtype: float32, but chip {built.name} has wire resistance, which settles in "
            "float64 only"
        )
    times = _times(infer_at)
    settings = {"chip_file": chip_file, "dtype": np.dtype(kind).name, "epochs": epochs}
    run = _Running(built, data, epochs, batch, kind, report, test_every)
    run_settings = {
        "dataset": data.name,
        "limit": -1 if limit is None else int(limit),
        "dataset_labels": _labels_digest(data),
    }
    if resume is not None:
        writer, done, state = RunWriter.resume(
            resume,
            built,
            {**run_settings, "dtype": settings["dtype"], "neuroemu_version": __version__},
        )
        if epochs < done:
            writer.close(False)
            raise InputError(
                f"epochs: {epochs} is fewer than the {done} the run in {resume} has done"
            )
        writer.meta["epochs"] = epochs  # the epochs asked for now
        for key, value in {**settings, **run_settings}.items():  # files that did not say
            writer.meta.setdefault(key, value)
        built.load_state(state)
        run.writer = writer
        run.done = done
    elif out is not None:
        run.writer = RunWriter.create(
            out,
            built,
            dataset=data.name,
            dataset_source=data.source,
            started=started,
            settings={**settings, **run_settings},
            force=force,
        )
    run.go(times)
    final = run.final
    if run.writer is not None:
        return open_run(run.writer.path, chip=built, figures=final.figures())
    meta = {
        "chip_name": built.name,
        "seed": built.seed,
        "dataset": data.name,
        "dataset_source": data.source,
        "started": started,
        **settings,
    }
    return Run(
        None,
        meta,
        history=run.history,
        prediction=final.prediction,
        label=data.y_test,
        figures=final.figures(),
        infer_at=run.aging,
        chip=built,
    )


class _Running:
    """A run in progress: the chip, its data, where it has got to, and what it recorded."""

    def __init__(
        self,
        chip: BaseChip,
        data: Dataset,
        epochs: int,
        batch: int,
        dtype: Any,
        report: Listener,
        test_every: int = 1,
    ):
        self.chip = chip
        self.test_every = test_every
        self.data = data
        self.epochs = epochs
        self.batch = batch
        self.dtype = dtype
        self.report = report
        self.writer: RunWriter | None = None
        self.done = -1  # the last evaluated epoch
        self.history: list[dict[str, Any]] = []
        self.aging: list[dict[str, Any]] = []
        self.final: InferenceReport

    def go(self, times: list[float]) -> None:
        """Evaluate, train and evaluate epoch by epoch, then after programming; the run file
        is closed whatever happens, marked complete only when all of it ran."""
        chip, data, training = self.chip, self.data, self.chip.spec.training
        complete = False
        try:
            if self.done < 0:
                if self._tested(0):
                    self._evaluated(0, self._test(f"inference {chip.name}"))
                self.done = 0
            for epoch in range(self.done + 1, self.epochs + 1):
                assert training is not None
                self._event("start", "train", f"epoch {epoch}/{self.epochs}", len(data.x_train))
                trained = train_epoch(
                    chip,
                    data.x_train,
                    data.y_train,
                    training,
                    epoch,
                    dtype=self.dtype,
                    progress=self._training_progress,
                )
                self._event("end", "train")
                failpoints.reach("epoch.trained")
                if self._tested(epoch):
                    test = self._test(f"test after epoch {epoch}")
                    snapshot = epoch % training.snapshot_every == 0 or epoch == self.epochs
                    self._evaluated(epoch, test, trained.figures(), snapshot)
            if times:
                self._after_programming(times)
            complete = True
        finally:
            if self.writer is not None:
                self.writer.close(complete)
        if not self.history:
            # A resumed run that had already finished every epoch: report its last state.
            self.final = evaluate(
                chip, data.x_test, data.y_test, batch_size=self.batch, dtype=self.dtype
            )

    def _tested(self, epoch: int) -> bool:
        """Whether the run evaluates (and records) ``epoch``: the last always, epoch 0 and
        every ``test_every``-th with ``test_every`` > 0."""
        if epoch == self.epochs:
            return True
        return self.test_every > 0 and epoch % self.test_every == 0

    def _event(self, kind: Any, task: Any = "test", description: str = "", total: int = 0) -> None:
        self.report(Event(kind, task, description, total, epochs=self.epochs))

    def _advance(self, task: Any, n: int) -> None:
        self.report(Event("advance", task, advance=n, epochs=self.epochs))

    def _training_progress(self, n: int, running: float) -> None:
        status = f"train error {100 * running:.1f} %"
        self.report(Event("advance", "train", advance=n, status=status, epochs=self.epochs))

    def _test(self, description: str) -> InferenceReport:
        """A pass over the test part."""
        data = self.data
        self._event("start", "test", description, len(data.x_test))
        report = evaluate(
            self.chip,
            data.x_test,
            data.y_test,
            batch_size=self.batch,
            dtype=self.dtype,
            progress=lambda n: self._advance("test", n),
        )
        self._event("end", "test")
        return report

    def _evaluated(
        self,
        epoch: int,
        test: InferenceReport,
        trained: dict[str, Any] | None = None,
        snapshot: bool = True,
    ) -> None:
        """Keep an evaluated epoch, write it with its traces, and report it."""
        figures = {**test.figures(), **(trained or {})}
        self.history.append({"epoch": epoch, **figures})
        self.final = test
        self._record(epoch, figures, test, snapshot)
        self.report(Event("epoch", epoch=epoch, epochs=self.epochs, figures=self.history[-1]))

    def _record(
        self, epoch: int, figures: dict[str, Any], test: InferenceReport, snapshot: bool
    ) -> None:
        """Commit an evaluated epoch and its traces: settle the traced samples first, then
        commit both at once (whole, or not at all, whatever instant the process dies)."""
        if self.writer is None:
            return
        chip, data, training = self.chip, self.data, self.chip.spec.training
        traced, samples = None, []
        if training is not None and training.trace_samples:
            samples = list(training.trace_samples)
            x, y = data.x_test[samples], data.y_test[samples]
            traced = trace_phases(chip, x, y, training, epoch)
        layers = [layer.name for layer in chip.spec.layers]
        self.writer.commit_epoch(
            epoch,
            figures,
            chip.state(),
            test.prediction,
            data.y_test,
            snapshot=snapshot,
            traced=traced,
            samples=samples,
            layers=layers,
        )

    def _after_programming(self, times: list[float]) -> None:
        data = self.data
        total = len(times) * len(data.x_test)
        self._event("start", "aging", "after programming", total)
        reports = infer_at(
            self.chip,
            times,
            data.x_test,
            data.y_test,
            batch_size=self.batch,
            dtype=self.dtype,
            progress=lambda n: self._advance("aging", n),
        )
        self._event("end", "aging")
        self.aging = [{"time_s": t, **r.figures()} for t, r in zip(times, reports, strict=True)]
        if self.writer is not None:
            self.writer.commit_aging(self.aging)


def _build(chip: str | os.PathLike[str] | BaseChip, seed: int | None) -> tuple[BaseChip, str]:
    """The chip to run, and how it was named (``chip_file``)."""
    if isinstance(chip, BaseChip):
        if seed is not None:
            raise InputError(
                f"seed: chip {chip.name} is built already, with seed {chip.seed}; "
                "give seed with a spec file or a library name"
            )
        path = chip.source.path if chip.source is not None else None
        return chip, "" if path is None else str(path)
    if not isinstance(chip, str | os.PathLike):
        raise InputError(
            f"chip: expected a spec file, a library chip's name or a Chip, "
            f"got {type(chip).__name__}"
        )
    if seed is not None:
        seed = _whole("seed", seed, 0)
    return Chip.from_yaml(chip, seed=seed), str(chip)


def _matching_dataset(name: str | os.PathLike[str] | None, chip: BaseChip) -> Dataset:
    """The data set, checked to fit the chip's inputs and outputs."""
    data = load_dataset(name)
    if data.n_features != chip.n_inputs:
        raise InputError(
            f"data set {data.name}: samples have {data.n_features} values but chip "
            f"{chip.name} takes {chip.n_inputs} inputs"
        )
    chip.check_labels(data.y_train, f"data set {data.name}: labels")
    chip.check_labels(data.y_test, f"data set {data.name}: labels")
    return data


def _labels_digest(data: Dataset) -> str:
    """The SHA-256 of the data set's labels, training then test part (as cut by ``limit``):
    what tells two data sets of one name apart when a run is resumed."""
    import hashlib

    h = hashlib.sha256()
    for labels in (data.y_train, data.y_test):
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def _whole(name: str, value: Any, minimum: int, default: int | None = None) -> int:
    """``value`` as a whole number of at least ``minimum`` (``default`` when ``None``)."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise InputError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _dtype(dtype: Any) -> Any:
    """``float64`` (default) or ``float32``, as a numpy type."""
    if dtype is None:
        return np.float64
    try:
        kind = np.dtype(dtype)
    except TypeError:
        kind = None
    if kind not in (np.float32, np.float64):
        raise InputError(f"dtype: must be float64 or float32 (got {dtype!r})")
    return kind.type


def _times(times: Sequence[float | str] | float | str | None) -> list[float]:
    """Times after programming in s, from numbers (s) or text such as ``1h`` (one, a list,
    or several in one text separated by commas)."""
    if times is None:
        return []
    if isinstance(times, str):
        times = [part for part in times.split(",") if part.strip()]
    elif isinstance(times, int | float):
        times = [times]
    out = []
    for t in times:
        if isinstance(t, str):
            try:
                out.append(parse_duration(t.strip()))
            except ValueError as exc:
                raise InputError(f"infer_at: {exc}") from None
        elif isinstance(t, int | float) and not isinstance(t, bool) and np.isfinite(t) and t > 0:
            out.append(float(t))
        else:
            raise InputError(f"infer_at: times must be > 0 s (got {t!r})")
    return out
