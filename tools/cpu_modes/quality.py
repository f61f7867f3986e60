"""Does bfloat16 autocast / channels-last on the CPU train as well as float32?

Two models (UNet-L3 and a deeply supervised UNet++, 8 filters, BatchNorm) on binary Shapes and on
noisy Cells (48x48), 200 steps of 8 images, 3 seeds, in each of the three modes; prints the test
mean IoU of every run and the mean per mode. (The seconds it prints are only indicative: our run
shared the machine with other work.) Usage: ``python tools/cpu_modes/quality.py`` (about 15
minutes on 1 thread); it writes ``quality.json`` to the current folder.
"""
import time, torch, statistics, json
torch.set_num_threads(1)
from segedu.data import Binary, Shapes, Cells
from segedu.models import UNet, UNetPlusPlus
from segedu.losses import DeepSupervisionLoss
from segedu.train import fit, default_loss
from segedu import metrics as M
print("mkldnn bf16 supported:", torch.ops.mkldnn._is_mkldnn_bf16_supported())
data = {"Shapes": (Binary(Shapes(96, size=48, seed=20)), Binary(Shapes(24, size=48, seed=21))),
        "Cells": (Cells(96, size=48, seed=22, cells=16, noise=0.3), Cells(24, size=48, seed=23, cells=16, noise=0.3))}
models = {"UNet-L3": lambda c: UNet(c, 2, depth=3, base_channels=8, padding="same", norm="batch"),
          "UNet++ DS": lambda c: UNetPlusPlus(c, 2, base_channels=8, norm="batch", deep_supervision=True)}
modes = {"fp32": dict(amp=False, channels_last=False), "bf16": dict(amp="bf16", channels_last=False),
         "channels_last": dict(amp=False, channels_last=True)}
res = []
for dname, (tr, te) in data.items():
    x = torch.stack([te[i][0] for i in range(len(te))]); y = torch.stack([te[i][1] for i in range(len(te))])
    for mname, build in models.items():
        for mode, kw in modes.items():
            for seed in (0, 1, 2):
                torch.manual_seed(seed); m = build(x.shape[1])
                loss = DeepSupervisionLoss(default_loss) if "DS" in mname else None
                t = time.perf_counter()
                fit(m, tr, loss=loss, epochs=1000, max_steps=200, batch_size=8, lr=3e-3, device="cpu", progress=False, seed=seed, **kw)
                dt = time.perf_counter() - t
                with torch.no_grad():
                    o = m.eval()(x); o = o[-1] if isinstance(o, list) else o
                iou = M.mean_iou(o, y, 2)
                res.append(dict(data=dname, model=mname, mode=mode, seed=seed, iou=iou, seconds=dt))
                print(dname, mname, mode, seed, f"iou {iou:.3f} {dt:.1f}s", flush=True)
json.dump(res, open("quality.json", "w"), indent=1)
for dname in data:
    for mname in models:
        line = [f"{dname:7s} {mname:10s}"]
        for mode in modes:
            rs = [r for r in res if r["data"] == dname and r["model"] == mname and r["mode"] == mode]
            ious = ", ".join("%.3f" % r["iou"] for r in rs)
            line.append("%s: iou %.3f (%s) %.1fs" % (mode, statistics.fmean(r["iou"] for r in rs), ious, statistics.fmean(r["seconds"] for r in rs)))
        print(" | ".join(line))
