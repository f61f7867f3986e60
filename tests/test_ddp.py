"""Data-parallel training: ``torchrun --nproc_per_node=2 -m segedu train`` on the CPU (gloo).

Two processes with 2 images each per step must train the same run as one process with 4: the
gradients DDP averages are the gradient of the global batch's mean loss, and the
DistributedSampler deals the same images into each global batch. The model has no BatchNorm
(BatchNorm would normalise each process's half-batch with its own statistics).
"""

import json
import os
import subprocess
import sys

import torch

from segedu.__main__ import main
from segedu.cli import load_model
from segedu.distributed import rank_and_world_size, strip_module_prefix

ARGS = ["train", "--model", "unet", "--width", "4", "--depth", "2", "--norm", "none", "--size", "32",
        "--n-train", "12", "--n-val", "4", "--batch-size", "4", "--epochs", "2", "--lr", "3e-3", "--device", "cpu",
        "--no-progress"]


def test_two_gloo_processes_match_one_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    # --standalone: a rendezvous on localhost with a free port chosen by the system
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "segedu", *ARGS, "--out", str(tmp_path / "ddp")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "x 2 processes" in proc.stdout
    assert main([*ARGS, "--out", str(tmp_path / "one")]) == 0
    assert rank_and_world_size() == (0, 1)  # the in-process run left no process group behind

    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    for a, b in zip(ddp["epochs"], one["epochs"]):
        for key in ("loss", "val_loss", "val_mean_iou"):
            assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(b[key])), (key, a[key], b[key])

    wd = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["state_dict"]
    wo = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["state_dict"]
    assert not any(k.startswith("module.") for k in wd)  # saved from the model inside the DDP wrapper
    assert wd.keys() == wo.keys()
    diff = max(float((wd[k] - wo[k]).abs().max()) for k in wd)
    assert diff < 1e-5, diff
    # only rank 0 wrote: one set of files, nothing half-written
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "last.pt", "metrics.json", "preview.png"]
    model, _ = load_model(tmp_path / "ddp")  # the checkpoint loads on one device
    assert next(model.parameters()).device.type == "cpu"


def test_strip_module_prefix():
    sd = {"module.a.weight": torch.zeros(1), "module.b": torch.ones(1)}
    assert list(strip_module_prefix(sd)) == ["a.weight", "b"]
    assert strip_module_prefix({"a": 1}) == {"a": 1}
