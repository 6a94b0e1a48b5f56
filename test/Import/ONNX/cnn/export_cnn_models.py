#!/usr/bin/env python3
"""Exports convolution, pooling and resizing layers from torch to ONNX, with
torch's own outputs, as fixtures for the importer's end-to-end test of the
forms ONNX's backend node tests leave out (grouped, dilated, 1-D and 3-D
convolutions, grouped transposed convolutions with output padding, pooling
with ceil_mode and padding, max-pool indices, bilinear and bicubic
resizing, a small CNN, and the global pools and a per-channel
QLinearConv, written here with numpy's results). torch exports count_include_pad=True as a Pad
node before the pooling, so only the exclusive form is here; ONNX's node
tests cover the other.

Run by hand with /usr/bin/python3 and Debian's python3-torch (1.13) and
python3-onnx; the test itself (run_backend_tests.py --data <this folder>)
needs neither torch nor this script. Each case is written in ONNX's
backend-test layout: <case>/model.onnx, <case>/test_data_set_0/{input,
output}_N.pb, and <case>/tolerance ("exact" or "rtol atol").
"""

import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

# The compiled model sums the window products in another order than torch.
FLOAT_TOLERANCE = "1e-4 1e-5"


class Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


class SmallCNN(torch.nn.Module):
    """Conv + BatchNorm (folded by the export) + ReLU, max pooling, a
    strided grouped convolution, global average pooling and a linear
    classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.fc = torch.nn.Linear(16, 10)
        with torch.no_grad():
            self.bn1.running_mean.uniform_(-0.5, 0.5)
            self.bn1.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = F.relu(self.conv2(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.reshape(1, 16))


def export(name, module, inputs, tolerance, opset):
    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    module.eval()
    with torch.no_grad():
        outputs = module(*inputs)
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    in_names = ["x%d" % i for i in range(len(inputs))]
    out_names = ["y%d" % i for i in range(len(outputs))]
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(module, tuple(inputs), path, opset_version=opset,
                      input_names=in_names, output_names=out_names,
                      do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    for k, (n, t) in enumerate(zip(in_names, inputs)):
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), n).SerializeToString())
    for k, (n, t) in enumerate(zip(out_names, outputs)):
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), n).SerializeToString())
    with open(os.path.join(d, "tolerance"), "w") as f:
        f.write(tolerance + "\n")
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print("%-28s opset %d: %s" % (name, opset, " ".join(ops)))


def save_handmade(name, graph, inputs, outputs, tolerance):
    """Writes a case built with onnx.helper, with numpy's outputs."""
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as fo:
            fo.write(numpy_helper.from_array(a, n).SerializeToString())
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as fo:
            fo.write(numpy_helper.from_array(a, n).SerializeToString())
    with open(os.path.join(d, "tolerance"), "w") as fo:
        fo.write(tolerance + "\n")
    ops = sorted({n.op_type for n in m.graph.node})
    print("%-28s opset 13: %s" % (name, " ".join(ops)))


def global_pools():
    """GlobalMaxPool and GlobalAveragePool (torch exports neither in
    these forms): one graph, 1-D and 3-D inputs, against numpy."""
    x1 = np.random.default_rng(0).standard_normal((2, 3, 7)).astype(np.float32)
    x3 = np.random.default_rng(1).standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    nodes = [helper.make_node("GlobalMaxPool", ["x0"], ["y0"]),
             helper.make_node("GlobalAveragePool", ["x1"], ["y1"])]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "global_pools",
        [helper.make_tensor_value_info("x0", f, x1.shape),
         helper.make_tensor_value_info("x1", f, x3.shape)],
        [helper.make_tensor_value_info("y0", f, (2, 3, 1)),
         helper.make_tensor_value_info("y1", f, (1, 2, 1, 1, 1))])
    y = [x1.max(axis=2, keepdims=True), x3.mean(axis=(2, 3, 4), keepdims=True)]
    save_handmade("global_pools", graph, [("x0", x1), ("x1", x3)],
                  [("y0", y[0]), ("y1", y[1].astype(np.float32))],
                  FLOAT_TOLERANCE)


def qlinearconv_per_channel():
    """QLinearConv with uint8 activations, int8 weights with per-channel
    scales and zero points, an int32 bias, padding and strides, against
    numpy (float32 requantisation, rounding half to even, as ONNX Runtime
    computes it)."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (1, 2, 5, 5)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8)
    xs, xz = np.float32(0.02), np.uint8(120)
    ws = np.array([0.01, 0.02, 0.005], np.float32)
    wz = np.array([0, 3, -2], np.int8)
    ys, yz = np.float32(0.5), np.int8(-5)
    b = np.array([100, -2000, 500], np.int32)
    xp = np.pad(x.astype(np.int32) - int(xz), ((0, 0), (0, 0), (1, 1), (1, 1)))
    wc = w.astype(np.int32) - wz.astype(np.int32)[:, None, None, None]
    acc = np.zeros((1, 3, 3, 3), np.int32)
    for m in range(3):
        for i in range(3):
            for j in range(3):
                acc[0, m, i, j] = (xp[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] *
                                   wc[m]).sum() + b[m]
    mult = ((xs * ws) / ys).astype(np.float32)[None, :, None, None]
    y = np.rint(acc.astype(np.float32) * mult) + np.float32(yz)
    y = np.clip(y, -128, 127).astype(np.int8)
    consts = [numpy_helper.from_array(v, n) for n, v in [
        ("x_scale", xs), ("x_zero_point", xz), ("w", w), ("w_scale", ws),
        ("w_zero_point", wz), ("y_scale", ys), ("y_zero_point", yz),
        ("B", b)]]
    node = helper.make_node(
        "QLinearConv", ["x0", "x_scale", "x_zero_point", "w", "w_scale",
                        "w_zero_point", "y_scale", "y_zero_point", "B"],
        ["y0"], pads=[1, 1, 1, 1], strides=[2, 2])
    graph = helper.make_graph(
        [node], "qlinearconv",
        [helper.make_tensor_value_info("x0", TensorProto.UINT8, x.shape)],
        [helper.make_tensor_value_info("y0", TensorProto.INT8, y.shape)],
        consts)
    save_handmade("qlinearconv_per_channel", graph, [("x0", x)], [("y0", y)],
                  "exact")


def main():
    t = FLOAT_TOLERANCE
    export("conv1d_strided_bias", torch.nn.Conv1d(4, 6, 3, stride=2, padding=1),
           [torch.randn(2, 4, 11)], t, 13)
    export("conv2d_grouped_dilated",
           torch.nn.Conv2d(4, 6, 3, stride=(1, 2), padding=2, dilation=2,
                           groups=2),
           [torch.randn(1, 4, 9, 8)], t, 13)
    export("conv2d_depthwise",
           torch.nn.Conv2d(6, 6, (3, 2), padding=(1, 0), groups=6),
           [torch.randn(1, 6, 7, 5)], t, 13)
    export("conv3d", torch.nn.Conv3d(2, 3, (2, 3, 3), stride=(1, 2, 1),
                                     padding=(1, 0, 1)),
           [torch.randn(1, 2, 4, 6, 5)], t, 13)
    export("convtranspose2d_grouped",
           torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                    output_padding=1, groups=2, dilation=2),
           [torch.randn(1, 4, 5, 4)], t, 13)
    export("convtranspose1d_strided",
           torch.nn.ConvTranspose1d(3, 2, 4, stride=3, padding=2),
           [torch.randn(2, 3, 5)], t, 13)
    export("maxpool2d_ceil_pads_indices",
           torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True,
                              return_indices=True),
           [torch.randn(1, 2, 8, 7)], "exact", 13)
    export("maxpool1d_dilated", torch.nn.MaxPool1d(3, stride=2, padding=1,
                                                   dilation=2),
           [torch.randn(2, 3, 12)], "exact", 13)
    export("avgpool2d_ceil_exclude_pad",
           torch.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                              count_include_pad=False),
           [torch.randn(1, 2, 8, 7)], t, 13)
    export("avgpool3d", torch.nn.AvgPool3d(2, stride=(1, 2, 2),
                                               count_include_pad=False),
           [torch.randn(1, 2, 3, 6, 5)], t, 13)
    export("resize_bilinear",
           Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                      align_corners=False)),
           [torch.randn(1, 2, 3, 4)], t, 13)
    export("resize_bilinear_align_corners",
           Fn(lambda x: F.interpolate(x, scale_factor=(2, 3), mode="bilinear",
                                      align_corners=True)),
           [torch.randn(1, 2, 3, 4)], t, 13)
    export("resize_bicubic",
           Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bicubic",
                                      align_corners=False)),
           [torch.randn(1, 2, 3, 4)], t, 13)
    export("resize_nearest",
           Fn(lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
           [torch.randn(1, 2, 3, 4)], "exact", 13)
    export("small_cnn", SmallCNN(), [torch.randn(1, 3, 16, 16)], t, 13)
    global_pools()
    qlinearconv_per_channel()


if __name__ == "__main__":
    main()
