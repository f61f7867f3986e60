"""Named experiments: every comparative claim of the course as a spec that anyone can re-run.

A chapter that says "BCE + Dice beats BCE alone" must be able to show the measurement behind it,
and a reader must be able to repeat it. So each claim is an :class:`Experiment` registered under
a name (``"ch6-loss"``): which models, on which data, under which budget, with which seeds, and
which paired comparisons decide it. :func:`run` trains and evaluates it with
:func:`~segedu.experiments.runner.compare` and returns an :class:`ExperimentResult`: the rows
(one per model x dataset x seed) and the verdicts (:func:`segedu.summary.paired_verdicts`: the
mean paired difference, its interval, the wins, and ``"a>b"``, ``"b>a"`` or ``"unresolved"``).

Results are stored in ``book/_data/experiments/NAME.json`` (``make experiments`` writes them;
``run(..., save=True)``). A chapter loads the stored result (``run(name)`` with ``cache=True``
reads it when its configuration matches the spec) and trains one live run of its own, which a
test compares with the stored row for the same seed, so the store cannot drift from the code.

Introduced in chapter 6.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from .. import __version__
from ..checkpoint import atomic_write
from ..runtime import hardware, resolve_device
from ..summary import paired_verdicts
from .runner import compare

__all__ = ["Experiment", "ExperimentResult", "EXPERIMENTS", "register", "run", "reproduce", "StoredResultDrift", "STORE"]

#: Where stored results live: inside the package (so that ``pip install`` brings them, and a
#: chapter on Colab reads them instead of training for hours); the book's ``book/_data/experiments``
#: is a link to this folder.
STORE = Path(__file__).resolve().parent / "stored"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Experiment:
    """One comparative question, fully specified.

    Args:
        name: the key in :data:`EXPERIMENTS` and the stored file's name.
        question: the claim under test, one sentence ("Does BCE + Dice beat BCE alone?").
        chapter: where the course asks it (``"06_unetpp"``).
        models: ``() -> {name: ModelSpec}`` (a function, so nothing is built until it runs).
        data: ``() -> {dataset name: (train, test)}``.
        comparisons: ``(a, b, metric)`` or ``(a, b, metric, dataset)`` tuples; each gives a verdict.
        seeds: the seeds of the stored result (at least 8 for a verdict the text relies on).
        steps, batch_size, lr: the budget, the same for every model (:func:`compare`).
        n_test: test images per dataset (at least 200 synthetic images, or a whole real split).
        complete_real_split: the test set is a whole held-out split of real data.
        metrics: ``() -> {name: f(scores, masks, test) -> float}``, columns beyond compare's own.
    """

    name: str
    question: str
    chapter: str
    models: Callable[[], dict]
    data: Callable[[], dict]
    comparisons: tuple
    seeds: tuple = tuple(range(8))
    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    n_test: int = 200
    complete_real_split: bool = False
    metrics: Callable[[], dict] | None = None

    def config(self) -> dict:
        """The plain-data description stored with a result; a stored result is reused only while
        its config equals the spec's. ``code`` fingerprints the source of ``models``, ``data`` and
        ``metrics`` (and of the functions and plain-data settings they use), so changing a width or
        a data set makes the store stale instead of silently reusing it."""
        return {"question": self.question, "chapter": self.chapter, "comparisons": [list(c) for c in self.comparisons],
                "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "n_test": self.n_test,
                "complete_real_split": self.complete_real_split,
                "code": _fingerprint(self.models, self.data, self.metrics)}


def _fingerprint(*functions) -> str:
    """A short hash of what the given functions compute: their source, and recursively the source of
    the segedu functions and the values of the public UPPER_CASE plain-data globals (settings such as a
    ``CH6 = dict(...)``) they refer to. Other globals are left out: a cache filled while an
    experiment runs must not change its fingerprint."""
    h, seen, todo = hashlib.sha256(), set(), [f for f in functions if f is not None]
    while todo:
        fn = todo.pop(0)
        if id(fn) in seen or not inspect.isfunction(fn):
            continue
        seen.add(id(fn))
        h.update(inspect.getsource(fn).encode())
        for name in fn.__code__.co_names + tuple(c for const in fn.__code__.co_consts if inspect.iscode(const)
                                                  for c in const.co_names):
            value = fn.__globals__.get(name)
            public_constant = name.isupper() and not name.startswith("_")
            if public_constant and isinstance(value, (dict, tuple, list, int, float, str, bool)):
                h.update(f"{name}={value!r}".encode())
            elif inspect.isfunction(value) and value.__module__.startswith("segedu.experiments"):
                todo.append(value)
    return h.hexdigest()[:16]


@dataclass
class ExperimentResult:
    """What :func:`run` returns and what ``book/_data/experiments/NAME.json`` stores."""

    name: str
    seeds: list
    rows: list
    verdicts: list
    n_test: int
    complete_real_split: bool
    seconds: float
    config: dict
    hardware: dict = field(default_factory=dict)
    version: str = __version__
    from_store: bool = False

    def verdict(self, a: str, b: str, metric: str, dataset=None) -> dict:
        """The stored verdict of ``a`` vs ``b`` on ``metric`` (on ``dataset``, where the experiment has several)."""
        found = [v for v in self.verdicts if (v["a"], v["b"], v["metric"]) == (a, b, metric)
                 and (dataset is None or v.get("dataset") == dataset)]
        if len(found) != 1:
            have = sorted({(v["a"], v["b"], v["metric"], v.get("dataset")) for v in self.verdicts}, key=str)
            what = "several verdicts (name a dataset)" if found else "no verdict"
            raise ValueError(f"{self.name} has {what} for {a!r} vs {b!r} on {metric!r}"
                             + (f" ({dataset!r})" if dataset else "") + f"; its verdicts: {have}")
        return found[0]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "seeds", "rows", "verdicts", "n_test", "complete_real_split",
                                           "seconds", "config", "hardware", "version")}
        return {"schema": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentResult":
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"stored experiment {d.get('name')!r} has schema {d.get('schema')!r}, "
                             f"this segedu reads schema {SCHEMA_VERSION}: re-run it with `make experiments`")
        return cls(**{k: v for k, v in d.items() if k != "schema"}, from_store=True)


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to :data:`EXPERIMENTS` (a name may be registered once)."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register takes an Experiment, got {type(experiment).__name__}")
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def _get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; the named experiments are: {', '.join(EXPERIMENTS) or 'none'}")
    return EXPERIMENTS[name]


def _stored(exp: Experiment, seeds: tuple, store: Path, config: dict) -> ExperimentResult | None:
    """The stored result restricted to ``seeds``, if one exists for this exact config and has them."""
    path = store / f"{exp.name}.json"
    if not path.exists():
        return None
    result = ExperimentResult.from_dict(json.loads(path.read_text()))
    if result.config != config or not set(seeds) <= set(result.seeds):
        return None
    if list(seeds) != list(result.seeds):  # a subset of the stored seeds: recompute the verdicts on it
        result.rows = [r for r in result.rows if r["seed"] in seeds]
        result.verdicts = paired_verdicts(result.rows, exp.comparisons)
        result.seeds = list(seeds)
    return result


def run(name: str, seeds=None, cache: bool = True, *, save: bool = False, store=STORE, device="auto",
        progress: bool = True, models=None, channels_last: bool | None = None) -> ExperimentResult:
    """Run the named experiment (or read its stored result) and return rows and verdicts.

    Args:
        name: a key of :data:`EXPERIMENTS`.
        seeds: the seeds to run; default: the spec's.
        cache: read ``store/NAME.json`` when it holds this configuration and these seeds, instead
            of training. ``cache=False`` always trains from scratch.
        save: write the result to ``store/NAME.json`` (what ``make experiments`` does). A stored
            result with more seeds is never replaced by one with fewer.
        store: the folder of stored results.
        device, progress: passed to :func:`compare`.
        models: train only these of the spec's models (names), e.g. to check one stored row live;
            the result's verdicts then cover only comparisons between them, and it is never saved.
        channels_last: force every model's memory format (``fit(channels_last=...)``; default: the
            spec's, which on a CPU or GPU is channels_last). The other format rounds differently, so
            it is a test of the method: a verdict that flips with it was rounding, not a result. It is
            part of the stored config, so store such a run in its own folder
            (``STORE / "contiguous"``).
    """
    exp = _get(name)
    seeds = tuple(exp.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed (and 8 or more for a verdict)")
    store = Path(store)
    if models is not None:
        cache = save = False
    config = exp.config()  # before running: what the result is a result of
    if channels_last is not None:
        config["channels_last"] = bool(channels_last)
    if cache and (stored := _stored(exp, seeds, store, config)) is not None:
        return stored
    specs = exp.models()
    if channels_last is not None:
        specs = {m: replace(s, fit_kwargs={**s.fit_kwargs, "channels_last": bool(channels_last)}) if s.build else s
                 for m, s in specs.items()}
    if models is not None:
        unknown = [m for m in models if m not in specs]
        if unknown:
            raise ValueError(f"{name} has no model(s) {unknown}; its models are {list(specs)}")
        # keep a model that another one reuses the training of (same_training_as) with it
        keep = set(models) | {specs[m].same_training_as for m in models if specs[m].same_training_as}
        specs = {m: s for m, s in specs.items() if m in keep}
    dev = resolve_device(device)
    start = time.perf_counter()
    rows = compare(specs, exp.data(), seeds, steps=exp.steps, batch_size=exp.batch_size, lr=exp.lr,
                   device=dev, progress=progress, metrics=exp.metrics() if exp.metrics else None)
    comparisons = [c for c in exp.comparisons if c[0] in specs and c[1] in specs]
    result = ExperimentResult(name=name, seeds=list(seeds), rows=rows, verdicts=paired_verdicts(rows, comparisons),
                              n_test=exp.n_test, complete_real_split=exp.complete_real_split,
                              seconds=time.perf_counter() - start, config=config, hardware=hardware(dev))
    if save:
        path = store / f"{name}.json"
        if path.exists() and len(json.loads(path.read_text()).get("seeds", [])) > len(seeds):
            raise ValueError(f"{path} holds a result with more seeds than {len(seeds)}; not replacing it "
                             "(delete it first if that is what you want)")
        store.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(result.to_dict(), indent=1) + "\n"))
    return result


class StoredResultDrift(AssertionError):
    """A live run no longer gives its stored row: the code changed, or the machine is not the one
    the results were stored on."""


#: The numbers a live run must reproduce, and how closely (same seed, same CPU: float noise only).
REPRODUCED_METRICS = ("pixel_accuracy", "mean_iou", "dice", "foreground_iou")
TOLERANCE = 1e-4
#: On another machine the sums round differently and a few hundred steps amplify that, so the live
#: run is, in effect, one more seed: it must land within CROSS_MACHINE_SDS standard deviations of the
#: stored seeds' mean (and at least CROSS_MACHINE_FLOOR from it is always allowed). Measured on an
#: Intel Xeon, the chapters' twelve reproduce cells against rows stored on an AMD EPYC: up to 0.20
#: from their stored seed in mean IoU and 0.31 in Dice, yet at most 1.4 standard deviations of the
#: stored seeds from their mean.
CROSS_MACHINE_SDS = 4.0
CROSS_MACHINE_FLOOR = 0.02


def reproduce(name: str, model: str | None = None, seed: int | None = None, *, dataset: str | None = None,
              store=STORE, tolerance: float = TOLERANCE, strict: bool | None = None, progress: bool = False) -> dict:
    """Train one stored run of experiment ``name`` again, live, on the CPU, and compare it with its stored row.

    This is how a chapter shows that the stored table is what the code computes: it trains one run
    (default: the stored result's cheapest model, on its first seed) and checks every number of
    :data:`REPRODUCED_METRICS` against the stored row. Returns ``{"model", "seed", "dataset",
    "stored", "live", "bound", "max_abs_diff", "tolerance", "same_machine"}`` (``bound``: the largest
    allowed difference of the metric that differed most: ``tolerance``, or the seeds' spread; see below).

    A few hundred training steps amplify rounding, so only the machine the results were stored on
    (same processor and platform) reproduces them to ``tolerance``; elsewhere (your laptop, a GPU,
    another CI machine) the live numbers differ by hundredths, a run on the edge between a good and a
    poor model by tenths, and the verdicts are what carries over. ``strict`` (default: on that
    machine, or when the environment sets ``SEGEDU_STRICT_REPRODUCE=1``, as ``make test`` does)
    raises :class:`StoredResultDrift` when the live run is off: beyond ``tolerance`` on the storing
    machine; on another machine, further from the stored seeds' mean than :data:`CROSS_MACHINE_SDS`
    standard deviations of those seeds (at least :data:`CROSS_MACHINE_FLOOR`), which a changed
    pipeline trips and rounding does not. Otherwise the difference is only reported.
    """
    exp = _get(name)
    path = Path(store) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m segedu.experiments {name}` to store {name} first")
    stored = ExperimentResult.from_dict(json.loads(path.read_text()))
    if stored.config != exp.config():
        raise StoredResultDrift(f"{path.name} was stored for another configuration of {name}: re-run "
                                f"`python -m segedu.experiments {name} --force`")
    seed = stored.seeds[0] if seed is None else seed
    rows = [r for r in stored.rows if r["seed"] == seed and (dataset is None or r["dataset"] == dataset)]
    if not rows:
        raise ValueError(f"{name} has no stored row for seed {seed}" + (f" on {dataset!r}" if dataset else "")
                         + f"; stored seeds: {stored.seeds}")
    if model is None:
        model = min(rows, key=lambda r: r["train_seconds"])["model"]
    wanted = [r for r in rows if r["model"] == model]
    if not wanted:
        raise ValueError(f"{name} has no stored model {model!r}; its models are {sorted({r['model'] for r in rows})}")
    here = hardware("cpu")
    same_machine = all(stored.hardware.get(k) == here.get(k) for k in ("processor", "platform"))
    threads = torch.get_num_threads()
    if same_machine and stored.hardware.get("threads"):
        torch.set_num_threads(stored.hardware["threads"])  # another thread count splits the sums differently
    try:
        live = run(name, seeds=[seed], models=[model], device="cpu", progress=progress)
    finally:
        torch.set_num_threads(threads)
    if strict is None:
        strict = same_machine or os.environ.get("SEGEDU_STRICT_REPRODUCE") == "1"
    worst, report = 0.0, None
    for want in wanted:
        (got,) = [r for r in live.rows if r["model"] == model and r["dataset"] == want["dataset"]]
        seeds = [r for r in stored.rows if r["model"] == model and r["dataset"] == want["dataset"]]
        for key in REPRODUCED_METRICS:
            diff = abs(got[key] - want[key])
            if same_machine:  # the same run, the same rounding: float noise only
                off, bound, what = diff, tolerance, f"stored {want[key]:.6f}"
            else:  # another seed, in effect: compare with the spread of the stored seeds
                values = torch.tensor([r[key] for r in seeds], dtype=torch.float64)
                sd = float(values.std()) if len(values) > 1 else 0.0
                off, bound = abs(got[key] - float(values.mean())), max(CROSS_MACHINE_SDS * sd, CROSS_MACHINE_FLOOR)
                what = (f"stored seeds' mean {float(values.mean()):.6f}, sd {sd:.2g} over {len(values)} seeds; "
                        f"the stored seed {seed}: {want[key]:.6f}")
            if diff >= worst:
                worst = diff
                report = dict(model=model, seed=seed, dataset=want["dataset"], stored=want, live=got, bound=bound)
            if strict and not off <= bound:  # "not <=" also catches NaN
                raise StoredResultDrift(
                    f"{name}, {model} on {want['dataset']}, seed {seed}: live {key} = {got[key]:.6f}, {what} "
                    f"(off by {off:.2g} > {bound:.2g}, {'the storing machine' if same_machine else 'another machine'}). "
                    f"If the code changed on purpose, re-run `python -m segedu.experiments {name} --force`; "
                    f"stored on: {stored.hardware.get('processor')}")
    return {**report, "max_abs_diff": worst, "tolerance": tolerance, "same_machine": same_machine}
