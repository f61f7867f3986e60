"""The command line: ``python -m segedu COMMAND``."""

import subprocess
import sys

from segedu.__main__ import main


def test_sizes_lists_the_16k_plus_124_rule(capsys):
    assert main(["sizes", "--max", "260"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [188, 204, 220, 236, 252]
    assert all(int(r[0]) == 16 * int(r[2]) + 124 for r in rows)
    assert rows[0][1] == "4"  # 188 -> 4: the smallest valid input of the paper's U-Net


def test_sizes_near_names_the_neighbours(capsys):
    assert main(["sizes", "--near", "500"]) == 0
    out = capsys.readouterr().out
    assert " 492 " in out and " 508 " in out


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "segedu", "bench", "--list"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sliding_window" in proc.stdout and "tiling" in proc.stdout


def test_help_lists_train_and_predict(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "predict" in out
    assert main(["train", "--help"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert main(["predict", "--help"]) == 0
    assert "--tiled" in capsys.readouterr().out
