"""The benchmark suite: a tiny run writes results.json with the documented schema (speeds are not
tested — they depend on the machine), bad input is refused clearly, and the appendix's generated
tables are in sync with the committed results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segedu import bench

ROOT = Path(__file__).resolve().parents[1]

META_KEYS = {"platform", "machine", "processor", "cpus", "python", "torch", "threads", "device", "device_name",
             "date", "scale", "repeats", "warmup", "max_seconds", "loadavg_start", "loadavg_end", "seconds"}
ENTRY_KEYS = {"title", "status", "reason", "seconds", "columns", "rows", "summary", "notes", "plot"}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = bench.run(device="cpu", scale="tiny", out=out, progress=False, repeats=1, warmup=0, threads=1,
                        modes=["fp32", "channels_last", "bf16"])
    return out, results


def test_tiny_run_writes_results_with_schema(tiny_results):
    out, results = tiny_results
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["schema"] == bench.SCHEMA_VERSION
    assert META_KEYS <= set(on_disk["meta"]), META_KEYS - set(on_disk["meta"])
    meta = on_disk["meta"]
    assert meta["device"] == "cpu" and meta["threads"] == 1 and meta["torch"] == torch.__version__
    assert meta["date"][:4].isdigit() and meta["scale"] == "tiny"
    assert list(on_disk["benchmarks"]) == list(bench.BENCHMARKS)
    for name, entry in on_disk["benchmarks"].items():
        assert ENTRY_KEYS <= set(entry), (name, ENTRY_KEYS - set(entry))
        assert entry["status"] in ("ok", "skipped")
        if entry["status"] == "skipped":
            assert entry["reason"], name  # a skip always says why
            continue
        assert entry["rows"], name
        keys = [c[0] for c in entry["columns"]]
        for row in entry["rows"]:
            assert set(keys) <= set(row), (name, set(keys) - set(row))
        if entry["plot"]:
            assert (out / entry["plot"]).stat().st_size > 1000


def test_tiny_run_measures_equality_and_modes(tiny_results):
    _, results = tiny_results
    sw = results["benchmarks"]["sliding_window"]
    assert sw["status"] == "ok"
    for row in sw["rows"]:
        assert row["equal"] and row["max_abs_diff"] < 1e-4
        assert row["sliding_s"] > 0 and row["dense_s"] > 0
    ts = results["benchmarks"]["train_step"]
    modes = {r["mode"] for r in ts["rows"]}
    # bfloat16 autocast — the mixed-precision code path — runs on the CPU, and is checked.
    assert {"fp32", "channels_last", "bf16"} <= modes
    for r in ts["rows"]:
        assert r["step_s"] > 0 and r["images_per_s"] > 0
        assert r["correct"], r  # every mode agrees with fp32 within its tolerance
    assert set(ts["summary"]["fastest_correct"].values()) <= modes


def test_tiny_run_times_whole_fit_runs_against_the_bare_step(tiny_results):
    _, results = tiny_results
    ft = results["benchmarks"]["fit_throughput"]
    assert ft["status"] == "ok" and len(ft["rows"]) >= 4  # at least four chapter configurations
    for r in ft["rows"]:
        assert r["end_to_end_images_per_s"] > 0 and r["step_images_per_s"] > 0 and r["data_ms_per_batch"] > 0
        assert r["fit_vs_step"] == pytest.approx(r["end_to_end_images_per_s"] / r["step_images_per_s"], rel=1e-3)
        assert r["steps"] == 3 and len(r["fit_samples"]) == len(r["step_samples"]) >= 1
    assert ft["summary"]["target"] == 0.90
    assert ft["summary"]["worst_fit_vs_step"] == min(r["fit_vs_step"] for r in ft["rows"])
    assert ft["summary"]["meets_target"] == (ft["summary"]["worst_fit_vs_step"] >= 0.90)


def test_plain_unet_has_the_same_architecture():
    """The baseline of plain_unet is the same network: equal parameters and, with copied weights,
    equal outputs (skipped until segedu's U-Net exists)."""
    UNet = pytest.importorskip("segedu.models").__dict__.get("UNet")
    if UNet is None:
        pytest.skip("segedu.models.UNet not written yet")
    torch.manual_seed(0)
    ours = UNet(in_channels=3, num_classes=4, depth=4, base_channels=8, padding="same", norm="batch", up="transpose")
    plain = bench.PlainUNet(3, 4, 8)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in plain.parameters())
    assert bench.copy_weights_by_shape(ours, plain)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), plain.eval()(x), atol=1e-5, rtol=1e-4)


def test_peak_memory_counts_a_known_allocation():
    n = 4 * 2**20  # 4 Mi float32 = 16 MiB

    def f():
        a = torch.ones(n)
        b = a * 2  # a and b alive together: 32 MiB
        return float(b[0])

    peak = bench.peak_memory_bytes(f, "cpu")
    assert 32 * 2**20 <= peak < 40 * 2**20


# ---------------------------------------------------------------------------- bad input

def test_unknown_benchmark_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown benchmark name.*'nope'.*choose from: sliding_window"):
        bench.run(["nope"], out=tmp_path, progress=False)


def test_unknown_device(tmp_path):
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*'auto', 'cpu' or 'cuda'"):
        bench.run(["sliding_window"], device="tpu", out=tmp_path, progress=False)
    with pytest.raises(TypeError, match="device must be"):
        bench.run(["sliding_window"], device=0, out=tmp_path, progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error_and_auto_falls_back(tmp_path):
    with pytest.raises(ValueError, match=r"no CUDA GPU is available.*--device auto"):
        bench.run(["sliding_window"], device="cuda", out=tmp_path, progress=False)
    assert bench.resolve_bench_device("auto").type == "cpu"


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=r"cannot write to the output folder.*--out"):
        bench.run(["sliding_window"], out=blocker / "results", progress=False)
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "read-only"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="cannot write to the output folder"):
                bench.run(["sliding_window"], out=ro, progress=False)
        finally:
            ro.chmod(0o700)


def test_bad_scale_and_threads(tmp_path):
    with pytest.raises(ValueError, match="scale must be one of"):
        bench.run(out=tmp_path, scale="huge", progress=False)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        bench.run(["sliding_window"], out=tmp_path, threads=0, progress=False)


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["nope", "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown benchmark name" in err and "Traceback" not in err


def test_help_description_is_the_package_docstring(capsys):
    """`python -m segedu bench --help` shows the first paragraph of the package's docstring."""
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    first = bench.__doc__.split("\n\n")[0]
    assert first.split("\n")[0] in capsys.readouterr().out


def test_cli_list(capsys):
    assert bench.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in bench.BENCHMARKS:
        assert name in out


# ---------------------------------------------------------------------------- the appendix

def test_report_renders_results(tiny_results, tmp_path):
    out, _ = tiny_results
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "results.json").write_text((out / "results.json").read_text())
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"01_x.ipynb": {"seconds": 61.0, "threads": 2, "cpus": 2, "torch": "2", "date": "d"}}))
    written = bench.write_report(tmp_path, notebook_times=times)
    cpu = (tmp_path / "cpu" / "report.md").read_text()
    assert "sliding_window" in cpu and "| size |" in cpu
    assert "No CUDA results" in (tmp_path / "cuda" / "report.md").read_text()
    assert "`01_x.ipynb` | 61 |" in (tmp_path / "notebook_times.md").read_text()
    assert len(written) == 3


def test_committed_report_is_in_sync_with_committed_results(tmp_path):
    """The appendix shows book/_data/bench/*/report.md; they must be regenerated whenever the
    results or the notebook times change: run `python -m segedu bench --report`."""
    src = ROOT / "book" / "_data" / "bench"
    if not (src / "cpu" / "results.json").exists():
        pytest.skip("no committed results yet")
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(src, copy)
    bench.write_report(copy, notebook_times=ROOT / "book" / "_data" / "notebook_times.json")
    for md in ("cpu/report.md", "cuda/report.md", "notebook_times.md"):
        assert (copy / md).read_text() == (src / md).read_text(), (
            f"book/_data/bench/{md} is stale: run `python -m segedu bench --report` and commit it")


@pytest.mark.slow
def test_command_line_entry_point(tmp_path):
    """`python -m segedu bench` (through the package's __main__) runs a tiny configuration."""
    if not (ROOT / "segedu" / "__main__.py").exists():
        pytest.skip("segedu/__main__.py not written yet")
    proc = subprocess.run([sys.executable, "-m", "segedu", "bench", "sliding_window", "--scale", "tiny",
                           "--out", str(tmp_path), "--no-plots"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "results.json").read_text())["benchmarks"]["sliding_window"]["status"] == "ok"


def test_time_limit_keeps_what_was_measured(tmp_path):
    results = bench.run(["sliding_window"], device="cpu", scale="tiny", out=tmp_path, progress=False,
                        time_limit=1e-9)
    entry = results["benchmarks"]["sliding_window"]
    assert entry["status"] == "ok" and entry["rows"] == []
    assert any("time limit reached" in n for n in entry["notes"])
    assert json.loads((tmp_path / "results.json").read_text())["benchmarks"]["sliding_window"]["notes"]


def test_update_keeps_other_benchmarks(tmp_path):
    bench.run(["sliding_window"], device="cpu", scale="tiny", out=tmp_path, progress=False, plots=False)
    bench.run(["activation_memory"], device="cpu", scale="tiny", out=tmp_path, progress=False, plots=False,
              update=True)
    kept = json.loads((tmp_path / "results.json").read_text())["benchmarks"]
    assert list(kept) == ["sliding_window", "activation_memory"]
    assert kept["sliding_window"]["rows"] and kept["activation_memory"]["rows"]


def test_old_stacks_are_the_memory_module_stacks():
    """FullResolutionStack / EncoderDecoderStack are segedu.memory's two stacks under the benchmark's
    older names: the same layers, initialised in the same order."""
    from segedu.memory import encoder_decoder_stack, full_resolution_stack

    for old, new in ((lambda: bench.FullResolutionStack(width=8, layers=3), lambda: full_resolution_stack(3, 8)),
                     (lambda: bench.EncoderDecoderStack(width=8, levels=2), lambda: encoder_decoder_stack(5, 8))):
        torch.manual_seed(0)
        a = old()
        torch.manual_seed(0)
        b = new()
        assert a.state_dict().keys() == b.state_dict().keys()
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k


def test_saved_activation_bytes_counts_each_storage_once():
    # conv -> relu (in place) -> conv -> relu -> 1x1 conv: two 8-channel 16x16 maps are kept for
    # backward (each relu output, which the next convolution also saves); the input is not counted.
    net = bench.FullResolutionStack(in_channels=3, num_classes=2, width=8, layers=2)
    assert bench.saved_activation_bytes(net, torch.rand(1, 3, 16, 16)) == 2 * 8 * 16 * 16 * 4
