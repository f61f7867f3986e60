"""Training speed of one UNet-L3 run on the CPU: float32 against bfloat16 autocast (``amp``) or
against the channels-last memory format (``channels_last``), 100 steps, 1 thread.

Run it twice, once as is and once with ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN then uses only AVX2
kernels, as on a CPU without AVX-512 and its bfloat16 instructions (most laptops)::

    python tools/cpu_modes/isa_speed.py amp
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/cpu_modes/isa_speed.py amp
    python tools/cpu_modes/isa_speed.py channels_last
    ONEDNN_MAX_CPU_ISA=AVX2 python tools/cpu_modes/isa_speed.py channels_last
"""
import os, sys, time, torch
torch.set_num_threads(1)
from segedu.data import Binary, Shapes
from segedu.models import UNet
from segedu.train import fit
from segedu import metrics as M
tr, te = Binary(Shapes(96, size=48, seed=20)), Binary(Shapes(24, size=48, seed=21))
x = torch.stack([te[i][0] for i in range(24)]); y = torch.stack([te[i][1] for i in range(24)])
print("ONEDNN_MAX_CPU_ISA =", os.environ.get("ONEDNN_MAX_CPU_ISA", "(default)"), flush=True)
MODE = sys.argv[1] if len(sys.argv) > 1 else "amp"
if MODE not in ("amp", "channels_last"):
    sys.exit("usage: isa_speed.py amp|channels_last")
for setting in ((False, "bf16") if MODE == "amp" else (False, True)):
    amp, cl = (setting, False) if MODE == "amp" else (False, setting)
    torch.manual_seed(0); m = UNet(3, 2, depth=3, base_channels=8, padding="same", norm="batch")
    fit(m, tr, epochs=100, max_steps=5, batch_size=8, device="cpu", progress=False, amp=amp, channels_last=cl)  # warm-up
    torch.manual_seed(0); m = UNet(3, 2, depth=3, base_channels=8, padding="same", norm="batch")
    t = time.perf_counter()
    fit(m, tr, epochs=100, max_steps=100, batch_size=8, lr=3e-3, device="cpu", progress=False, amp=amp, seed=0, channels_last=cl)
    dt = time.perf_counter() - t
    with torch.no_grad(): o = m.eval()(x)
    print(f"{MODE}={setting}: {dt:.2f} s for 100 steps, mean IoU {M.mean_iou(o, y, 2):.6f}, first logit {o[0,0,0,0].item():.9f}", flush=True)
