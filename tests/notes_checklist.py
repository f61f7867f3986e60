"""The study notes' topics, walked in order, each with the chapter section that covers it.

The course follows a set of Chinese study notes (``../shared/notes/semantic-segmentation-notes.zh.md``,
see ``../shared/notes/README.md``). ``CHECKLIST`` has one entry per idea, formula and claim of the
notes, in the notes' order:

* ``notes``: where it is in the notes (heading path, then a short quote);
* ``idea``: the idea, formula or claim, in English;
* ``chapter``: the stem of the chapter's source, ``notebooks/src/<chapter>.py``;
* ``section``: the exact text of the Markdown heading in that chapter that covers it;
* ``status``: ``"covered"`` (the chapter teaches it, usually with a measurement), or
  ``"corrected"`` (the chapter shows that the notes are wrong or imprecise there, and says so).

``tests/test_notes_checklist.py`` fails if a chapter or a section named here is missing, so a
renamed heading must be renamed here too.

``UNCOVERED`` lists what the notes say that no chapter covers yet (not tested against headings;
an entry moves to ``CHECKLIST`` when a chapter takes it up).
"""

from __future__ import annotations

COVERED = "covered"
CORRECTED = "corrected"

CHECKLIST: list[dict[str, str]] = [
    # ---------------------------------------------------------------- 语义分割基础 / 暴力法
    {
        "notes": "语义分割基础: 语义分割（semantic segmentation）",
        "idea": "Semantic segmentation labels every pixel of an image with a class.",
        "chapter": "01_sliding_window",
        "section": "What semantic segmentation is",
        "status": COVERED,
    },
    {
        "notes": "暴力法: 滑动窗口……用 CNN 对每个区域中心点像素进行图像分类",
        "idea": "Brute force: a CNN classifies the window around a pixel and gives its class to the centre pixel.",
        "chapter": "01_sliding_window",
        "section": "A patch classifier",
        "status": COVERED,
    },
    {
        "notes": "暴力法: 设置某个大小的窗口在图像上滑动",
        "idea": "The window slides over the whole image, one classified patch per pixel.",
        "chapter": "01_sliding_window",
        "section": "Segmenting by sliding the window",
        "status": COVERED,
    },
    {
        "notes": "暴力法: 效率太低，重叠区域被大量重复计算",
        "idea": "The sliding window is inefficient: overlapping regions are recomputed "
                "(every interior pixel lies in P^2 patches; MACs and time measured).",
        "chapter": "01_sliding_window",
        "section": "How much work is repeated?",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- FCN
    {
        "notes": "FCN: 让整个网络只包含卷积层，一次性输出所有像素的类别预测",
        "idea": "A network of convolutions only predicts every pixel's class in one pass; the sliding "
                "window's classifier rewritten as convolutions gives the same scores without repetition.",
        "chapter": "01_sliding_window",
        "section": "Convolutionalisation: the same network, without the repetition",
        "status": COVERED,
    },
    {
        "notes": "FCN: 一次性输出所有像素的类别预测",
        "idea": "An FCN maps [N, C, H, W] images to [N, K, H, W] class scores, for any input size.",
        "chapter": "02_fcn",
        "section": "One score per class and pixel",
        "status": COVERED,
    },
    {
        "notes": "FCN: loss 函数为所有像素的 cross entropy",
        "idea": "The loss is the cross entropy of every pixel, averaged over all pixels of the batch.",
        "chapter": "02_fcn",
        "section": "The loss: cross entropy at every pixel",
        "status": COVERED,
    },
    {
        "notes": "FCN: 如果每一层的卷积一直保持原始分辨率，会占用相当高的显存",
        "idea": "Keeping the full resolution in every layer costs a lot of (activation) memory.",
        "chapter": "02_fcn",
        "section": "Why downsample? Activation memory, measured",
        "status": COVERED,
    },
    {
        "notes": "FCN: 可在网络中加入下采样（池化）和上采样（反池化）的过程",
        "idea": "Hence the encoder-decoder: downsample (pooling) inside the network, then upsample back.",
        "chapter": "02_fcn",
        "section": "Why downsample? Activation memory, measured",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- FCN > 上采样 > 一般方法
    {
        "notes": "FCN > 上采样 > 一般方法: Nearest Neighbor，复制离自己最近的像素值",
        "idea": "Nearest-neighbour upsampling copies each value into its whole block.",
        "chapter": "03_upsampling",
        "section": "Three ways to undo a 2×2 max-pooling",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: Bed of Nails，周围直接填充 0",
        "idea": "Bed of nails puts each value in one fixed position of its block and zeros elsewhere.",
        "chapter": "03_upsampling",
        "section": "Three ways to undo a 2×2 max-pooling",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: index pooling，对下采样和上采样时的对应关系进行了记忆",
        "idea": "Index (max) unpooling remembers where max-pooling took each value and puts it back there.",
        "chapter": "03_upsampling",
        "section": "Three ways to undo a 2×2 max-pooling",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: 两者都可能添加噪声",
        "idea": "Nearest neighbour and bed of nails add error (noise) to the upsampled map (MSE measured).",
        "chapter": "03_upsampling",
        "section": "Measuring where the values land",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: Bed of Nails……位置对应关系可能……不一致",
        "idea": "Bed of nails puts a value where pooling did not take it from (share misplaced and distance measured).",
        "chapter": "03_upsampling",
        "section": "Measuring where the values land",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: index pooling 对……对应关系进行了记忆",
        "idea": "Index unpooling restores every maximum to its exact position.",
        "chapter": "03_upsampling",
        "section": "Measuring where the values land",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 一般方法: 这两种方法基本不使用",
        "idea": "Nearest neighbour and bed of nails are rarely used in networks: the upsamplings compared "
                "inside the same encoder-decoder.",
        "chapter": "03_upsampling",
        "section": "Does it matter for segmentation? The same encoder–decoder, five upsamplings",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- FCN > 上采样 > 转置卷积
    {
        "notes": "FCN > 上采样 > 转置卷积: 在下采样时，移动的卷积核……红格在下采样时是红框位置的结果",
        "idea": "Downsampling (a strided convolution or pooling) reads a window of the input into one output value.",
        "chapter": "04_transposed_conv",
        "section": "Overlap-add: every input value stamps a copy of the kernel",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 将红格位置的元素填入红框内所有位置……重叠的部分按照权重相加",
        "idea": "Transposed convolution: each input value writes a weighted copy of the kernel into the "
                "output, stride apart; overlaps are summed.",
        "chapter": "04_transposed_conv",
        "section": "Overlap-add: every input value stamps a copy of the kernel",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 转置卷积是可学习的上采样，重叠部分的权重作为……参数",
        "idea": "Transposed convolution is a learnable upsampling: its kernel is trained like any weight.",
        "chapter": "04_transposed_conv",
        "section": "Learnable upsampling: the kernel is trained",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 以一维计算为例……x,y,z 就是要学习的参数",
        "idea": "The 1D example: a kernel [x, y, z] of three learned weights.",
        "chapter": "04_transposed_conv",
        "section": "The 1D derivation: a convolution is a matrix, and its transpose upsamples",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 将一维卷积写为矩阵形式……a 的两端的 0 为填充",
        "idea": "A 1D convolution is a matrix product: the notes' X is 4×6 and acts on the zero-padded "
                "input (0, a1, a2, a3, a4, 0).",
        "chapter": "04_transposed_conv",
        "section": "The notes' form: a 4×6 matrix on the padded input",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: X 内非 0 的部分为需要学习的权重",
        "idea": "The non-zero entries of X are the kernel's weights: row i is the kernel shifted by i.",
        "chapter": "04_transposed_conv",
        "section": "The 1D derivation: a convolution is a matrix, and its transpose upsamples",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 只需将卷积核矩阵 X 进行转置……（所以叫转置卷积）",
        "idea": "Multiplying by X^T is the transposed convolution (equals conv_transpose1d); hence the name.",
        "chapter": "04_transposed_conv",
        "section": "The 1D derivation: a convolution is a matrix, and its transpose upsamples",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 即可达到恢复维度的效果",
        "idea": "'X^T restores the dimension' is imprecise: at stride 1 the notes' X^T maps 4 -> 6 (the "
                "padded length), no upsampling; a real upsampling needs stride 2; and X^T restores the "
                "shape, not the values (transposed is not inverse).",
        "chapter": "04_transposed_conv",
        "section": "The notes' form: a 4×6 matrix on the padded input",
        "status": CORRECTED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 输出宽高以依据 stride 和 padding",
        "idea": "Output size n_out = (n-1)s - 2p + d(k-1) + o + 1, checked against PyTorch.",
        "chapter": "04_transposed_conv",
        "section": "Output size",
        "status": COVERED,
    },
    {
        "notes": "FCN > 上采样 > 转置卷积: 输出通道数依据过滤器个数（与一般卷积同理）",
        "idea": "Output channels = number of filters, as for an ordinary convolution.",
        "chapter": "04_transposed_conv",
        "section": "Output size",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- U-Net > 网络结构
    {
        "notes": "U-Net: Unet 是个 U 形的全卷积的语义分割网络",
        "idea": "U-Net is a U-shaped fully convolutional segmentation network (the paper's network built exactly).",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: contracting path: 池化 stride = 2；每次池化后使 feature channel 加倍",
        "idea": "Contracting path: 2×2 pooling with stride 2, channels doubled after each pooling (64 -> 1024).",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: expansive path: 每次转置卷积（up-convolution）后使 feature channel 减半",
        "idea": "Expansive path: each 2×2 up-convolution halves the channels.",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 最后一层卷积是 1x1 卷积，使 channel 变为想要的类别数",
        "idea": "The last layer is a 1×1 convolution to the number of classes.",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 卷积层没有使用 padding ，共 23 层卷积",
        "idea": "Unpadded (valid) 3×3 convolutions; 23 convolutional layers in total (counted).",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 没有使用全连接，只有卷积层，理论上可以处理任意大的输入",
        "idea": "No fully connected layer, so inputs of any (large) size; which sizes exactly the valid "
                "network accepts is derived and enumerated.",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 输入（572x572）比输出（388x388）大",
        "idea": "A 572×572 input gives a 388×388 output (a 92-pixel margin on every side, at every valid size).",
        "chapter": "05_unet",
        "section": "Why 572 → 388: the receptive field and the 92-pixel margin",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 使用更大范围的纹理信息，避免预测边缘时……纹理信息不充分",
        "idea": "The larger input gives every output pixel its full context: the receptive field reaches "
                "at least 92 pixels to each side, and the 572 window is the union of the 388 outputs' fields.",
        "chapter": "05_unet",
        "section": "Why 572 → 388: the receptive field and the 92-pixel margin",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 使用更大范围的纹理信息，避免预测边缘时……纹理信息不充分",
        "idea": "Does the real context near the edges buy accuracy? Valid padding with overlap-tile against "
                "same padding, supervised on the same pixels (stored experiment).",
        "chapter": "07_comparison",
        "section": "Valid or same padding, on the same pixels",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 灰色箭头代表复制和剪切……宽高不相等，所以剪切中间",
        "idea": "Copy and crop: the encoder's map is centre-cropped to the decoder's smaller map and concatenated.",
        "chapter": "05_unet",
        "section": "The paper's network, exactly",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 利用浅层的 feature",
        "idea": "Skips bring shallow, high-resolution features back to the decoder (FCN-16s/8s against "
                "FCN-32s: the finer skips measured).",
        "chapter": "02_fcn",
        "section": "FCN-32s, FCN-16s and FCN-8s",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: 也导致了最终输出的中心是输入的中心区域",
        "idea": "The output covers the centre region of the input.",
        "chapter": "05_unet",
        "section": "Why 572 → 388: the receptive field and the 92-pixel margin",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 网络结构: Unet 仍然是一个 encoder-decoder 结构",
        "idea": "U-Net is still an encoder-decoder: a contracting and an expansive path.",
        "chapter": "05_unet",
        "section": "U-Net",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- U-Net > overlap-tile
    {
        "notes": "U-Net > overlap-tile: 对非常大的图片采用 overlap-tile 策略；蓝色为输入的滑动窗口，黄色为输出",
        "idea": "Overlap-tile: slide the input window (blue) so that the output tiles (yellow) cover a large "
                "image; mirror the image at its border.",
        "chapter": "05_unet",
        "section": "Overlap-tile: images of any size",
        "status": COVERED,
    },
    {
        "notes": "U-Net > overlap-tile: 为节约显存",
        "idea": "Tiling saves memory: a tile's activations are bounded by the tile size (peak memory measured).",
        "chapter": "05_unet",
        "section": "Overlap-tile: images of any size",
        "status": COVERED,
    },
    {
        "notes": "U-Net > overlap-tile: 训练或测试时可以……采用 overlap-tile 策略",
        "idea": "Overlap-tile in training too: train on crops with a margin of context, predict whole images by tiles.",
        "chapter": "07_comparison",
        "section": "Valid or same padding, on the same pixels",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- U-Net > 偶数对齐
    {
        "notes": "U-Net > 偶数对齐: 保证每一次池化前的 feature map 大小是偶数，使得 pooling 不会损失信息",
        "idea": "Every pooling must meet an even size, or it loses a row/column.",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 偶数对齐: 保证每一次转置卷积前的 feature map 大小是偶数，crop 时不会产生误差",
        "idea": "Refuted by enumeration: the size before an up-convolution may be odd (odd k works); the crops "
                "are the same for every k and always symmetric.",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": CORRECTED,
    },
    {
        "notes": "U-Net > 偶数对齐: 结构中 28^2 的位置为 k^2……从池化后往池化前（×2）反推……（+4）",
        "idea": "x = 2(2(2(2(k+4)+4)+4)+4)+4 = 16k + 124, with k the size before the first up-convolution "
                "(k = 28 for 572), derived both ways and expanded with sympy.",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": COVERED,
    },
    {
        "notes": "U-Net > 偶数对齐: & = 2^4 + 4(2^4 + 2^3 + 2^2 + 2 + 1)",
        "idea": "The notes' algebra slip: the middle line must read 2^4 k + 4(...), not 2^4 + 4(...).",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": CORRECTED,
    },
    {
        "notes": "U-Net > 偶数对齐: 其中，k 是一个偶数，否则会导致裁剪中心 feature map 时无法整数划分",
        "idea": "'k must be even' is refuted by enumeration: valid sizes are exactly 16k + 124 with k >= 4, "
                "odd k included (204, 236, ...).",
        "chapter": "05_unet",
        "section": "Which input sizes work? The rule $x = 16k + 124$",
        "status": CORRECTED,
    },
    # ---------------------------------------------------------------- U-Net > loss
    {
        "notes": "U-Net > loss: 使用 pixel-wise 的 cross entropy",
        "idea": "U-Net is trained with the pixel-wise cross entropy.",
        "chapter": "05_unet",
        "section": "Touching cells and the weight map",
        "status": COVERED,
    },
    {
        "notes": "U-Net > loss: 对每个 ground truth 预计算一个权重 map，用于对……边缘的像素分配更高的权重",
        "idea": "A weight map precomputed from each label puts high weight on the gaps between touching "
                "objects: w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / (2 sigma^2)).",
        "chapter": "05_unet",
        "section": "Touching cells and the weight map",
        "status": COVERED,
    },
    {
        "notes": "U-Net > loss: 用于对重要的表示边缘的像素分配更高的权重",
        "idea": "Does the weight map keep touching cells apart? Stored experiment, cross entropy vs weight map.",
        "chapter": "05b_unet_training",
        "section": "Experiment: does the weight map separate touching cells?",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- U-Net > skip connection
    {
        "notes": "U-Net > skip connection: FCN 使用加操作（summation）",
        "idea": "FCN's skips add score maps (summation).",
        "chapter": "02_fcn",
        "section": "FCN-32s, FCN-16s and FCN-8s",
        "status": COVERED,
    },
    {
        "notes": "U-Net > skip connection: FCN 使用加操作（summation）即残差连接",
        "idea": "FCN's sum is not a residual connection: FCN adds score maps from two depths, ResNet adds a "
                "block's input to its output.",
        "chapter": "02_fcn",
        "section": "FCN-32s, FCN-16s and FCN-8s",
        "status": CORRECTED,
    },
    {
        "notes": "U-Net > skip connection: Unet 使用叠操作（concatenation）拼接通道",
        "idea": "U-Net concatenates channels; concatenation vs summation skips compared (stored experiment).",
        "chapter": "05b_unet_training",
        "section": "Experiment: concatenation vs summation skips",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- UNet++
    {
        "notes": "UNet++: UNet 和 FCN 的最优深度（层数）不确定，越深不一定越好，需要针对数据进行实验对比",
        "idea": "The best depth is unknown in advance and depends on the data: UNet-L1..L4 on two data sets.",
        "chapter": "06_unetpp",
        "section": "Which depth? UNet-L1..L4 on two data sets",
        "status": COVERED,
    },
    {
        "notes": "UNet++: skip connection 只连接了同一层级的特征（从 encoder 到 decoder）",
        "idea": "U-Net's skips join only encoder and decoder maps of the same level.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++: 以下的“层”是非实际卷积层数，是架构形式上的层数",
        "idea": "'Level' means the down-sampling level i of the grid X^{i,j}, not the number of convolutions.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet L: 一到四层的 UNet 的架构；虚线是 skip connection，下箭头为 pooling，上箭头为 upsampling",
        "idea": "UNet-L1..L4: U-Nets of depth 1-4 on the grid, drawn from the model objects (skips, "
                "down-sampling, up-sampling).",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet e: 用多个 UNet 进行 ensemble",
        "idea": "UNet-e: an ensemble of the U-Nets of depth 1-4; the members' heads are averaged.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet e: skip connection 由 X^{i,0} 连接到 X^{i,j}；共用一个 encoder，而有多个 decoder",
        "idea": "UNet-e: X^{i,j} reads only X^{i,0}; one shared encoder, one decoder per member, a loss per member.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet e: 深层的监督信号（梯度）只能在每个（encoder 的一部分，单独的一个 decoder）对中流通",
        "idea": "In UNet-e a member's loss reaches the other decoders only through the shared encoder "
                "(gradient reach measured: exact zeros).",
        "chapter": "06b_unetpp_training",
        "section": "Why UNet+ follows UNet-e",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet+: 为了让监督信号在不同 decoder 中也能流通……将相邻 decoder 的层都连接起来",
        "idea": "UNet+ connects neighbouring decoders (X^{i,j} reads X^{i,j-1}) so the signal flows between "
                "decoders (gradient reach measured).",
        "chapter": "06b_unetpp_training",
        "section": "Why UNet+ follows UNet-e",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet+: 将相邻 decoder 的层都连接起来",
        "idea": "UNet+ wiring: the same nodes as UNet-e, X^{i,j} reads its left neighbour X^{i,j-1}.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet++: 让信息在 encoder 和 decoder 中都共享",
        "idea": "UNet++: dense nested skips, X^{i,j} reads all of X^{i,0} ... X^{i,j-1}.",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet++: 在水平方向上，combines multiscale features from its all preceding nodes at the same resolution",
        "idea": "Horizontally, a node concatenates all preceding nodes of its row (same resolution): "
                "X^{i,j} = H([X^{i,0}, ..., X^{i,j-1}, U(X^{i+1,j-1})]).",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > UNet++: 在垂直方向上，integrates multiscale features across different resolutions from its preceding node",
        "idea": "Vertically, a node takes the up-sampled node below-left U(X^{i+1,j-1}); X^{i,0} = H(D(X^{i-1,0})).",
        "chapter": "06_unetpp",
        "section": "One grid, four networks",
        "status": COVERED,
    },
    {
        "notes": "UNet++: UNet ++ 使多尺度的特征逐步地聚合以进行分割，能够有更高的准确率",
        "idea": "UNet++ is more accurate than U-Net, UNet-e and UNet+ (stored experiment, same budget).",
        "chapter": "06b_unetpp_training",
        "section": "Does nesting help? The stored experiment",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- UNet++ > Deep supervision
    {
        "notes": "UNet++ > Deep supervision: 在网络中间隐藏层添加辅助分类器分支对网络进行监督……DSN",
        "idea": "Deep supervision (deeply-supervised nets): auxiliary classifiers on hidden layers, their "
                "losses added to the final one.",
        "chapter": "06b_unetpp_training",
        "section": "Why auxiliary heads",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: 用于解决深度网络梯度消失和收敛速度慢的问题",
        "idea": "Against vanishing gradients and slow convergence: the gradient reaching each decoder "
                "measured with and without deep supervision.",
        "chapter": "06b_unetpp_training",
        "section": "Why auxiliary heads",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: 对 X^{0,1},X^{0,2},X^{0,3},X^{0,4} 使用 C 个 1x1 卷积，然后通过 sigmoid",
        "idea": "UNet++'s heads: a 1×1 convolution with C outputs and a sigmoid on each of X^{0,1}..X^{0,4}.",
        "chapter": "06b_unetpp_training",
        "section": "Why auxiliary heads",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: 使用 cross-entropy 加 soft dice-coefficient 混合的 loss",
        "idea": "The hybrid loss: binary cross entropy plus soft Dice.",
        "chapter": "06_unetpp",
        "section": "The loss: BCE + soft Dice",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: cross-entropy（产生平滑的梯度）",
        "idea": "Why BCE stays next to Dice: smooth, per-pixel, well-scaled gradients; Dice alone fails on "
                "an empty or tiny target (gradients measured).",
        "chapter": "06_unetpp",
        "section": "Why keep the cross entropy?",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: soft dice-coefficient（应对类别不平衡（class imbalance）问题）",
        "idea": "Soft Dice handles class imbalance: BCE + Dice against BCE alone on a small foreground "
                "(stored experiment).",
        "chapter": "06_unetpp",
        "section": "Experiment: a small foreground",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: （loss 公式图）其中，N 是一个 batch 所有 sample 的所有像素数的总和，y 为 ground truth，p 为像素",
        "idea": "The 2019 per-pixel form: -1/N sum_c sum_n (y log p + 2yp / (y^2 + p^2)), N = all pixels "
                "of the batch, no 1/2 (shown next to the 2018 eq. 1; p is the predicted probability).",
        "chapter": "06_unetpp",
        "section": "Two forms of the formula, and what the code computes",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: （loss 公式图）",
        "idea": "Read literally the formula charges no false positive (and is 0/0 where p = 0); the official "
                "code computes 0.5 * full BCE - one soft Dice over the whole flattened batch.",
        "chapter": "06_unetpp",
        "section": "Two forms of the formula, and what the code computes",
        "status": CORRECTED,
    },
    {
        "notes": "UNet++ > Deep supervision: N 是一个 batch 所有 sample 的所有像素数的总和",
        "idea": "One Dice over the whole batch vs a Dice per image: both reductions implemented, and "
                "whether the choice matters measured (stored experiment).",
        "chapter": "06_unetpp",
        "section": "Experiment: per image or per batch, and the threshold",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: 需要每个 decoder 设置该 loss……加权求和（作者只进行了直接相加）",
        "idea": "One hybrid loss per head, combined with equal weights.",
        "chapter": "06b_unetpp_training",
        "section": "Why auxiliary heads",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: 对于 UNet+ 和 UNet++，细线代表的 deep supervision 是非必须的 loss 分支",
        "idea": "Deep supervision is optional for UNet+ and UNet++: UNet++ with and without it (stored experiment).",
        "chapter": "06b_unetpp_training",
        "section": "Does it help? The stored experiment",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: Dice-coefficient 主要用于 Semantic Segmentation",
        "idea": "The Dice coefficient 2|A ∩ B| / (|A| + |B|) measures segmentation overlap and ignores true negatives.",
        "chapter": "06_unetpp",
        "section": "The loss: BCE + soft Dice",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > Deep supervision: soft dice-coefficient 直接使用预测概率计算而不是使用阈值将它们转换为二进制 mask",
        "idea": "Soft Dice uses the predicted probabilities instead of a thresholded mask, so it is differentiable.",
        "chapter": "06_unetpp",
        "section": "The loss: BCE + soft Dice",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- UNet++ > 修剪
    {
        "notes": "UNet++ > 修剪: 充分地共享信息使得 UNet++ 更有弹性，在训练完后，可以……进行不同程度的修剪",
        "idea": "A deeply supervised UNet++ can be pruned after training: head X^{0,j} depends only on nodes "
                "with i + j <= j, so UNet++ L1..L4 share the trained weights.",
        "chapter": "06b_unetpp_training",
        "section": "Pruning",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > 修剪: 为了减少推理时间而对进行不同程度的修剪，但准确度可能降低",
        "idea": "Pruning trades accuracy for inference time (IoU of L1..L4 against measured time).",
        "chapter": "06b_unetpp_training",
        "section": "Pruning",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > 修剪: 作者……发现 UNet++ L3 可以在显著减少 inference 时间的情况下，仍保持较高的准确率",
        "idea": "UNet++ L3 keeps most of the accuracy at a much lower inference time.",
        "chapter": "06b_unetpp_training",
        "section": "Pruning",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > 修剪: UNet++ L3……显著减少 inference 时间",
        "idea": "The pruned UNet++ L3 among all the course's models, accuracy against inference cost.",
        "chapter": "07_comparison",
        "section": "Accuracy against cost",
        "status": COVERED,
    },
    # ---------------------------------------------------------------- UNet++ > 逐渐分割
    {
        "notes": "UNet++ > 逐渐分割: 作者认为 UNet 的特征变化太快，而 UNet++ 的 skip connection 可以使网络的分割呈现一个逐步细化的过程",
        "idea": "Progressive refinement: U-Net's top-row features jump from X^{0,0} to X^{0,4}, UNet++'s "
                "change gradually (feature maps, heads and linear probes, U-Net next to UNet++).",
        "chapter": "06b_unetpp_training",
        "section": "Progressive refinement: U-Net next to UNet++",
        "status": COVERED,
    },
    {
        "notes": "UNet++ > 逐渐分割: 提升了准确度",
        "idea": "The gradual refinement improves accuracy: UNet++ against U-Net (stored experiment).",
        "chapter": "06b_unetpp_training",
        "section": "Does nesting help? The stored experiment",
        "status": COVERED,
    },
]

# What the notes say that no chapter covers (yet). Not checked against headings.
UNCOVERED: list[dict[str, str]] = [
    {
        "notes": "U-Net > 偶数对齐: 宽高大小一般取相等",
        "idea": "Width and height are usually taken equal. No chapter says whether or why: the size rule "
                "applies to each side separately (05 tiles a 1000×700 image), but this is never stated.",
    },
    {
        "notes": "UNet++: UNet ++ ……能够有更高的准确率和更快的收敛速度",
        "idea": "UNet++ converges faster. Not measured: the experiments score every model after a fixed "
                "number of steps; no chapter compares learning curves.",
    },
]
