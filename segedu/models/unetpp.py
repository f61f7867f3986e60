"""UNet++ and its family (Zhou et al., 2018/2019), on one grid of nodes X^{i,j}.

The UNet++ paper draws every network of its comparison on the same grid. Node ``X^{i,j}``
lives at down-sampling level ``i`` (row; 0 = full resolution) and is the ``j``-th convolution
block along the skip pathway of that row (column; ``j = 0`` is the encoder). Every decoder node
is a double 3x3 convolution applied to the concatenation of

* some nodes of its own row, ``X^{i,k}`` with ``k < j`` — which ones is what differs, and
* the up-sampled node below-left, ``up(X^{i+1,j-1})``.

============  ===============================  =========================================
model         same-row inputs of X^{i,j}       what it is
============  ===============================  =========================================
UNetE         ``X^{i,0}``                      U-Nets of depth 1..L sharing one encoder
UNetPlus      ``X^{i,j-1}``                    UNet-e with the decoders chained
UNetPlusPlus  ``X^{i,0}, ..., X^{i,j-1}``      dense nested skip pathways
============  ===============================  =========================================

The nodes are kept in an ``nn.ModuleDict`` keyed by the paper's names (``"x_0_1"``, ...), so the
code *is* the grid. With ``deep_supervision=True`` a 1x1 head sits on each of ``X^{0,1}..X^{0,L}``
and ``forward`` returns the list of their outputs. ``.pruned(level)`` keeps only the nodes that
``X^{0,level}`` depends on (all lie in the triangle ``i + j <= level``) and shares their trained
weights.

The plain U-Net of depth L (UNet-L) is :class:`segedu.models.UNet` with ``padding="same"``.

Introduced in chapter 6.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_positive_int
from ..sizes import check_unet_input_size
from .blocks import DoubleConv, check_norm
from .unet import UpConv
from .utils import check_input_dtype

__all__ = ["NestedUNet", "UNetPlusPlus", "UNetPlus", "UNetE", "PrunedNestedUNet"]


class NestedUNet(nn.Module):
    """The grid shared by UNet-e, UNet+ and UNet++; ``same_row`` picks the skip inputs."""

    #: for node X^{i,j}: the columns k of the same row whose outputs it concatenates
    same_row: staticmethod = staticmethod(lambda j: list(range(j)))

    def __init__(self, in_channels: int = 1, num_classes: int = 1, depth: int = 4, base_channels: int = 32,
                 deep_supervision: bool = False, norm=None, up: str = "transpose"):
        super().__init__()
        check_positive_int("depth", depth, note=" (4 in the paper)")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("base_channels", base_channels)):
            check_positive_int(name, value)
        self.config = dict(in_channels=in_channels, num_classes=num_classes, depth=depth, base_channels=base_channels,
                           deep_supervision=deep_supervision, norm=check_norm(norm), up=up)
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.deep_supervision, self.padding = bool(deep_supervision), "same"
        f = [base_channels * 2**i for i in range(depth + 1)]  # 32, 64, 128, 256, 512
        self.filters = f
        self.pool = nn.MaxPool2d(2, 2)
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(depth + 1):  # encoder: X^{i,0}
            self.nodes[f"x_{i}_0"] = DoubleConv(in_channels if i == 0 else f[i - 1], f[i], "same", norm)
        for j in range(1, depth + 1):  # decoder nodes, column by column
            for i in range(depth - j + 1):
                # up(X^{i+1,j-1}): a 2x2 up-convolution to the width of row i
                self.ups[f"up_{i + 1}_{j - 1}"] = UpConv(f[i + 1], f[i], up)
                c_in = f[i] * len(self.same_row(j)) + f[i]
                self.nodes[f"x_{i}_{j}"] = DoubleConv(c_in, f[i], "same", norm)
        # 1x1 heads on the top row: all of X^{0,1..L} with deep supervision, else only X^{0,L}.
        self.heads = nn.ModuleDict({f"x_0_{j}": nn.Conv2d(f[0], num_classes, 1) for j in self.head_columns()})
        self.register_forward_pre_hook(check_input_dtype)  # float input of the weights' dtype

    def head_columns(self) -> list[int]:
        return list(range(1, self.depth + 1)) if self.deep_supervision else [self.depth]

    def needed_nodes(self, level: int) -> set:
        """The nodes ``(i, j)`` that head X^{0,level} depends on (what pruning keeps).

        Every edge goes from (i', j') to (i, j) with i' + j' <= i + j, so these always lie in the
        triangle i + j <= level; for UNet-e fewer are needed (X^{0,2} does not read X^{0,1}).
        """
        need, todo = set(), [(0, level)]
        while todo:
            i, j = todo.pop()
            if (i, j) not in need:
                need.add((i, j))
                if j == 0:
                    todo += [(i - 1, 0)] if i > 0 else []
                else:
                    todo += [(i, k) for k in self.same_row(j)] + [(i + 1, j - 1)]
        return need

    def _grid(self, x: torch.Tensor, level: int, need=None) -> dict:
        """Compute the nodes X^{i,j} with i + j <= level (only those in ``need``, if given)."""
        X = {}
        h = x
        for i in range(level + 1):
            X[(i, 0)] = self.nodes[f"x_{i}_0"](h if i == 0 else self.pool(X[(i - 1, 0)]))
        for j in range(1, level + 1):
            for i in range(level - j + 1):
                if need is not None and (i, j) not in need:
                    continue
                inputs = [X[(i, k)] for k in self.same_row(j)]
                inputs.append(self.ups[f"up_{i + 1}_{j - 1}"](X[(i + 1, j - 1)]))
                X[(i, j)] = self.nodes[f"x_{i}_{j}"](torch.cat(inputs, dim=1))
        return X

    def forward(self, x: torch.Tensor):
        check_unet_input_size(x, self.in_channels, self.depth, "same")
        X = self._grid(x, self.depth)
        outs = [self.heads[f"x_0_{j}"](X[(0, j)]) for j in self.head_columns()]
        return outs if self.deep_supervision else outs[-1]

    def pruned(self, level: int) -> "PrunedNestedUNet":
        """The sub-network that ends at head X^{0,level}, sharing this model's (trained) weights."""
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= self.depth:
            raise ValueError(f"level must be an integer in 1..{self.depth}, got {level!r}")
        if level < self.depth and not self.deep_supervision:
            raise ValueError(f"pruning to level {level} needs the head on X^{{0,{level}}}, which exists only when the model "
                             "is built (and trained) with deep_supervision=True")
        return PrunedNestedUNet(self, level)


class PrunedNestedUNet(nn.Module):
    """UNet++ L``level``: only the nodes that head X^{0,level} reads (i + j <= level), and that head.

    The modules are the parent's own (not copies), so the pruned network uses the trained weights
    and its output equals the parent's head ``level`` exactly.
    """

    def __init__(self, parent: NestedUNet, level: int):
        super().__init__()
        self.level, self.depth, self.in_channels = level, level, parent.in_channels
        self.padding, self.same_row = "same", parent.same_row
        self.pool = parent.pool
        self.need = parent.needed_nodes(level)
        keep = {f"x_{i}_{j}" for i, j in self.need}
        self.nodes = nn.ModuleDict({k: m for k, m in parent.nodes.items() if k in keep})  # the same modules
        self.ups = nn.ModuleDict({f"up_{i + 1}_{j - 1}": parent.ups[f"up_{i + 1}_{j - 1}"]
                                  for i, j in sorted(self.need) if j > 0})
        self.head = parent.heads[f"x_0_{level}"]
        self.register_forward_pre_hook(check_input_dtype)

    _grid = NestedUNet._grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_unet_input_size(x, self.in_channels, self.level, "same")
        return self.head(self._grid(x, self.level, self.need)[(0, self.level)])


class UNetPlusPlus(NestedUNet):
    """UNet++: node X^{i,j} concatenates all of X^{i,0..j-1} and up(X^{i+1,j-1})."""

    same_row = staticmethod(lambda j: list(range(j)))


class UNetPlus(NestedUNet):
    """UNet+: node X^{i,j} concatenates only its left neighbour X^{i,j-1} and up(X^{i+1,j-1})."""

    same_row = staticmethod(lambda j: [j - 1])


class UNetE(NestedUNet):
    """UNet-e: U-Nets of depth 1..L sharing one encoder; X^{i,j} reads only the encoder node X^{i,0}.

    The sub-network ending at X^{0,j} is exactly a U-Net of depth j. Without deep supervision the
    output is the ensemble: the mean of the heads' outputs (each sub-network has its own head, as in
    the paper); with ``deep_supervision=True`` the list of heads is returned.
    """

    same_row = staticmethod(lambda j: [0])

    def head_columns(self) -> list[int]:
        return list(range(1, self.depth + 1))  # every member of the ensemble has a head

    def forward(self, x: torch.Tensor):
        check_unet_input_size(x, self.in_channels, self.depth, "same")
        X = self._grid(x, self.depth)
        outs = [self.heads[f"x_0_{j}"](X[(0, j)]) for j in self.head_columns()]
        return outs if self.deep_supervision else torch.stack(outs).mean(0)

    def pruned(self, level: int):
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= self.depth:
            raise ValueError(f"level must be an integer in 1..{self.depth}, got {level!r}")
        return PrunedNestedUNet(self, level)
