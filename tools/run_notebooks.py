"""Execute chapter notebooks in place, each in a clean kernel, and record how long each took.

``make notebooks`` calls this after ``tools/py2nb.py``. Widget state is not stored in the
notebooks (the book shows the static form of every demo), and the measured wall-clock time of
each notebook is written to ``book/_data/notebook_times.json`` for the Performance appendix.

Usage: ``python tools/run_notebooks.py [notebooks/01_sliding_window.ipynb ...]`` (default: all).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "book" / "_data" / "notebook_times.json"


def run(path: Path, timeout: int = 1800) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=True)  # needed by nbclient's Output-widget hook; stripped below
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return seconds


def record(name: str, seconds: float) -> None:
    """Store one notebook's time in TIMES (re-read first: another run may have added entries) and
    regenerate the appendix's table, so the committed report never goes stale."""
    import torch

    from segedu import bench

    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[name] = {"seconds": round(seconds, 1), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                   "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                   "date": time.strftime("%Y-%m-%d")}
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=2) + "\n")
    bench.write_report(notebook_times=TIMES)


def main(argv):
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    for p in paths:
        print(f"executing {p.relative_to(ROOT)} ...", flush=True)
        s = run(p)
        print(f"  {s:.1f} s", flush=True)
        record(p.name, s)


if __name__ == "__main__":
    main(sys.argv[1:])
