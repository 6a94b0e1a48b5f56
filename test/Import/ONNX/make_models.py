#!/usr/bin/env python3
"""Writes the ONNX models of the importer's tests (run with /usr/bin/python3;
needs python3-onnx and python3-numpy only).

  Inputs/*.onnx            malformed or unsupported models (errors.test)
  Inputs/models/<name>/    valid models with test_data_set_0 in ONNX's
                           backend-test layout: BitLinear patterns and their
                           expected outputs computed here with numpy
                           (float32, the graph's own order of operations).

(Inputs/regressions/ holds inputs found by fuzzing and testing; they are
kept as found, not generated here.)

The files are committed; rerun after changing this script.
"""

import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = os.path.join(HERE, "Inputs")
MODELS = os.path.join(INPUTS, "models")
F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=17, extra_opsets=(),
          name="g", value_info=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits),
                          value_info=list(value_info))
    ops = [helper.make_opsetid("", opset)] + [
        helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=ops, producer_name="make_models")
    m.ir_version = 8
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def save(m, name):
    with open(os.path.join(INPUTS, name), "wb") as f:
        f.write(m.SerializeToString())


def empty_tensor(name, dims):
    t = TensorProto()
    t.name = name
    t.data_type = F
    t.dims.extend(dims)
    return t


def add_model(a="a", b="b"):
    return model([helper.make_node("Add", [a, b], ["y"], name="add0")],
                 [vi("a", F, [2, 3]), vi("b", F, [2, 3])], [vi("y", F, [2, 3])])


def malformed():
    good = add_model().SerializeToString()
    with open(os.path.join(INPUTS, "truncated.onnx"), "wb") as f:
        f.write(good[: len(good) // 2])
    with open(os.path.join(INPUTS, "not_onnx.onnx"), "wb") as f:
        f.write(b"// This is MLIR text, not an ONNX model.\nfunc.func @f()\n")
    open(os.path.join(INPUTS, "empty.onnx"), "wb").close()

    save(model([helper.make_node("LpNormalization", ["x"], ["y"], name="norm0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])]),
         "unsupported_op.onnx")
    save(model([helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])]),
         "unknown_op.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], opset=18),
         "unsupported_opset.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu0",
                                 domain="org.example")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])],
               extra_opsets=[("org.example", 1)]),
         "unknown_domain.onnx")
    save(model([helper.make_node("Add", ["a", "b"], ["y"], name="mixed_add")],
               [vi("a", F, [2, 3]), vi("b", TensorProto.INT64, [2, 3])],
               [vi("y", F, [2, 3])]),
         "wrong_type.onnx")
    save(model([helper.make_node("Gemm", ["a", "b"], ["y"], name="gemm3d")],
               [vi("a", F, [2, 3, 4]), vi("b", F, [4, 5])],
               [vi("y", F, [2, 3, 5])]),
         "wrong_rank.onnx")
    save(model([helper.make_node("Add", ["a", "nowhere"], ["y"], name="add0")],
               [vi("a", F, [2, 3])], [vi("y", F, [2, 3])]),
         "dangling_input.onnx")
    save(model([helper.make_node("Add", ["a", "t2"], ["t1"], name="first"),
                helper.make_node("Relu", ["t1"], ["t2"], name="second"),
                helper.make_node("Relu", ["t1"], ["y"], name="out")],
               [vi("a", F, [2, 3])], [vi("y", F, [2, 3])]),
         "cycle.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
               [vi("x", F, [1, 1 << 40])], [vi("y", F, [1, 1 << 40])]),
         "absurd_input_dim.onnx")
    huge = empty_tensor("w", [1 << 20, 1 << 20])
    save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits=[huge]),
         "absurd_initializer.onnx")
    bad_raw = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    bad_raw.raw_data = bad_raw.raw_data[:10]
    save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits=[bad_raw]),
         "bad_raw_data.onnx")
    for name, location in [("missing_external.onnx", "weights_missing.bin"),
                           ("escaping_external.onnx", "../outside.bin"),
                           ("absolute_external.onnx", "/etc/passwd")]:
        t = empty_tensor("w", [2, 3])
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", location
        save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add0")],
                   [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits=[t]), name)
    # External data that exists but is too short.
    with open(os.path.join(INPUTS, "short_weights.bin"), "wb") as f:
        f.write(b"\0" * 8)
    t = empty_tensor("w", [2, 3])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "short_weights.bin"
    save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits=[t]),
         "short_external.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
               [vi("x", F, ["batch", 3])], [vi("y", F, ["batch", 3])]),
         "dynamic_input.onnx")
    save(model([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape0")],
               [vi("x", F, [2, 3]), vi("s", TensorProto.INT64, [2])],
               [vi("y", F, [3, 2])]),
         "runtime_shape.onnx")
    save(model([helper.make_node("Relu", ["x"], ["t"], name="first"),
                helper.make_node("Relu", ["x"], ["t"], name="again")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])]),
         "duplicate_output.onnx")
    save(model([helper.make_node("Relu", ["x"], ["t"], name="relu0")],
               [vi("x", F, [2, 3])], [vi("y", F, [2, 3])]),
         "undefined_output.onnx")
    save(model([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape0")],
               [vi("x", F, [2, 3])], [vi("y", F, [4, 2])],
               inits=[numpy_helper.from_array(np.array([4, 2], np.int64), "s")]),
         "bad_reshape.onnx")
    save(model([helper.make_node("MatMul", ["a", "b"], ["y"], name="mm0")],
               [vi("a", F, [2, 3]), vi("b", F, [4, 5])], [vi("y", F, [2, 5])]),
         "matmul_mismatch.onnx")
    save(model([helper.make_node("Transpose", ["x"], ["y"], name="t0",
                                 perm=[0, 0])],
               [vi("x", F, [2, 3])], [vi("y", F, [3, 2])]),
         "bad_perm.onnx")
    save(model([helper.make_node("Gather", ["x", "i"], ["y"], name="pick")],
               [vi("x", F, [2, 3])], [vi("y", F, [2])],
               inits=[numpy_helper.from_array(np.array(3, np.int64), "i")]),
         "gather_out_of_range.onnx")
    save(model([helper.make_node("Identity", ["x"], ["y"], name="id0")],
               [vi("x", TensorProto.COMPLEX64, [2, 3])],
               [vi("y", TensorProto.COMPLEX64, [2, 3])]),
         "complex64_input.onnx")


# --- Valid models: BitLinear patterns with expected outputs ----------------

RNG = np.random.default_rng(1234)
f32 = np.float32


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def act_quant_nodes(x, prefix, exact):
    """The per-token absmax chain; returns (nodes, inits, output name)."""
    p = prefix
    nodes = [
        helper.make_node("Abs", [x], [p + "abs"]),
        helper.make_node("ReduceMax", [p + "abs"], [p + "max"], axes=[-1],
                         keepdims=1),
        helper.make_node("Clip", [p + "max", p + "eps", ""], [p + "m"]),
    ]
    inits = [const(p + "eps", f32(1e-5)), const(p + "c127", f32(127)),
             const(p + "lo", f32(-128)), const(p + "hi", f32(127))]
    if exact:
        nodes.append(helper.make_node("Div", [p + "c127", p + "m"], [p + "s"]))
    else:
        nodes += [helper.make_node("Reciprocal", [p + "m"], [p + "r"]),
                  helper.make_node("Mul", [p + "r", p + "c127"], [p + "s"])]
    nodes += [
        helper.make_node("Mul", [x, p + "s"], [p + "xs"]),
        helper.make_node("Round", [p + "xs"], [p + "xr"]),
        helper.make_node("Clip", [p + "xr", p + "lo", p + "hi"], [p + "q"]),
        helper.make_node("Div", [p + "q", p + "s"], [p + "xq"]),
    ]
    return nodes, inits, p + "xq"


def act_quant_ref(x, exact):
    m = np.maximum(np.abs(x).max(axis=-1, keepdims=True), f32(1e-5)).astype(f32)
    s = (f32(127) / m).astype(f32) if exact else \
        ((f32(1) / m).astype(f32) * f32(127)).astype(f32)
    q = np.clip(np.round(x * s), -128, 127).astype(f32)
    return (q / s).astype(f32)


def save_case(name, m, inputs, outputs, tolerance=None):
    d = os.path.join(MODELS, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    for k, (n, a) in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for k, (n, a) in enumerate(outputs):
        with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    if tolerance:
        with open(os.path.join(d, "tolerance"), "w") as f:
            f.write(tolerance + "\n")


def ternary(shape, scale):
    t = RNG.integers(-1, 2, size=shape).astype(f32)
    return t, f32(scale)


def initializers():
    """Initialisers in typed fields and in an external file."""
    x = RNG.standard_normal((2, 3)).astype(f32)
    wf = RNG.standard_normal((2, 3)).astype(f32)
    wi = np.array([[-3, 0, 7], [127, -128, 1]], np.int8)
    wb = np.array([[True, False, True], [False, True, True]])
    wl = np.array([5, -2, 9], np.int64)
    inits = [helper.make_tensor("wf", F, [2, 3], wf.ravel().tolist()),
             helper.make_tensor("wi", TensorProto.INT8, [2, 3],
                                wi.ravel().tolist()),
             helper.make_tensor("wb", TensorProto.BOOL, [2, 3],
                                wb.ravel().tolist()),
             helper.make_tensor("wl", TensorProto.INT64, [3], wl.tolist())]
    assert all(not t.raw_data for t in inits)
    nodes = [helper.make_node("Add", ["x", "wf"], ["a"]),
             helper.make_node("Cast", ["wi"], ["wif"], to=F),
             helper.make_node("Cast", ["wl"], ["wlf"], to=F),
             helper.make_node("Mul", ["x", "wif"], ["m"]),
             helper.make_node("Add", ["m", "wlf"], ["b"]),
             helper.make_node("Where", ["wb", "a", "b"], ["y"])]
    m = model(nodes, [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], inits)
    y = np.where(wb, x + wf, x * wi.astype(f32) + wl.astype(f32)).astype(f32)
    save_case("typed_initializers", m, [("x", x)], [("y", y)])
    # The same weight in a file next to the model, at an offset.
    d = os.path.join(MODELS, "external_initializer")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(b"\xff" * 16 + wf.tobytes())
    t = empty_tensor("wf", [2, 3])
    t.data_location = TensorProto.EXTERNAL
    for k, v in [("location", "weights.bin"), ("offset", "16"),
                 ("length", str(wf.nbytes))]:
        e = t.external_data.add()
        e.key, e.value = k, v
    m = model([helper.make_node("Add", ["x", "wf"], ["y"], name="add0")],
              [vi("x", F, [2, 3])], [vi("y", F, [2, 3])], [t])
    save_case("external_initializer", m, [("x", x)], [("y", (x + wf).astype(f32))])


def valid():
    x = RNG.standard_normal((2, 3, 16)).astype(f32)
    # (b) {-1,0,1} initialiser times a scale, exact activation scale.
    for exact in (True, False):
        t, c = ternary((16, 8), 0.0421)
        nodes, inits, xq = act_quant_nodes("x", "a_", exact)
        nodes += [helper.make_node("Mul", ["t", "c"], ["w"]),
                  helper.make_node("MatMul", [xq, "w"], ["y"], name="proj")]
        inits += [const("t", t), const("c", c)]
        m = model(nodes, [vi("x", F, [2, 3, 16])], [vi("y", F, [2, 3, 8])],
                  inits)
        y = act_quant_ref(x, exact) @ (t * c).astype(f32)
        save_case("bitlinear_scaled_%s" % ("exact" if exact else "torch"), m,
                  [("x", x)], [("y", y.astype(f32))])
    # (a) online weight quantisation on a latent float weight; one
    # activation chain feeding two MatMuls.
    w1 = RNG.standard_normal((16, 8)).astype(f32) * f32(0.05)
    w2 = RNG.standard_normal((16, 4)).astype(f32) * f32(0.05)
    nodes, inits, xq = act_quant_nodes("x", "a_", True)
    for wname in ("w1", "w2"):
        p = wname + "_"
        nodes += [
            helper.make_node("Abs", [wname], [p + "abs"]),
            helper.make_node("ReduceMean", [p + "abs"], [p + "mean"],
                             keepdims=0),
            helper.make_node("Clip", [p + "mean", "weps", ""], [p + "m"]),
            helper.make_node("Reciprocal", [p + "m"], [p + "r"]),
            helper.make_node("Mul", [wname, p + "r"], [p + "ws"]),
            helper.make_node("Round", [p + "ws"], [p + "wr"]),
            helper.make_node("Clip", [p + "wr", "wlo", "whi"], [p + "wc"]),
            helper.make_node("Div", [p + "wc", p + "r"], [p + "wq"]),
            helper.make_node("MatMul", [xq, p + "wq"], ["y_" + wname],
                             name="proj_" + wname),
        ]
    inits += [const("w1", w1), const("w2", w2), const("weps", f32(1e-5)),
              const("wlo", f32(-1)), const("whi", f32(1))]
    m = model(nodes, [vi("x", F, [2, 3, 16])],
              [vi("y_w1", F, [2, 3, 8]), vi("y_w2", F, [2, 3, 4])], inits)

    def wq(w):
        r = (f32(1) / np.maximum(np.abs(w).astype(np.float64).mean(),
                                 1e-5).astype(f32)).astype(f32)
        return (np.clip(np.round(w * r), -1, 1) / r).astype(f32)
    xr = act_quant_ref(x, True)
    save_case("bitlinear_online_shared", m, [("x", x)],
              [("y_w1", (xr @ wq(w1)).astype(f32)),
               ("y_w2", (xr @ wq(w2)).astype(f32))])
    # (c) int8 ternary weight through DequantizeLinear.
    t, c = ternary((16, 8), 0.03125)
    nodes, inits, xq = act_quant_nodes("x", "a_", True)
    nodes += [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]),
              helper.make_node("MatMul", [xq, "w"], ["y"], name="proj")]
    inits += [const("wq", t.astype(np.int8)), const("ws", f32(c))]
    m = model(nodes, [vi("x", F, [2, 3, 16])], [vi("y", F, [2, 3, 8])], inits)
    save_case("bitlinear_dequantize", m, [("x", x)],
              [("y", (xr @ (t * c).astype(f32)).astype(f32))])
    # (c) MatMulInteger on int8 activations and an int8 ternary weight.
    xi = RNG.integers(-128, 128, size=(4, 16)).astype(np.int8)
    t, _ = ternary((16, 8), 1)
    m = model([helper.make_node("MatMulInteger", ["x", "w"], ["y"], name="mmi")],
              [vi("x", TensorProto.INT8, [4, 16])],
              [vi("y", TensorProto.INT32, [4, 8])],
              [const("w", t.astype(np.int8))])
    save_case("matmulinteger_ternary", m, [("x", xi)],
              [("y", (xi.astype(np.int32) @ t.astype(np.int32)).astype(np.int32))])
    # (d) com.microsoft MatMulNBits, 2-bit codes, zero point 1, one scale.
    K, N, block = 32, 8, 16
    t, c = ternary((N, K), 0.05)
    codes = (t + 1).astype(np.uint8)  # {0, 1, 2}
    blocks = K // block
    packed = np.zeros((N, blocks, block // 4), np.uint8)
    for n in range(N):
        for k in range(K):
            packed[n, k // block, (k % block) // 4] |= codes[n, k] << (2 * (k % 4))
    zp = np.zeros((N, (blocks * 2 + 7) // 8), np.uint8)
    for n in range(N):
        for b in range(blocks):
            zp[n, b // 4] |= 1 << (2 * (b % 4))
    xk = RNG.standard_normal((3, K)).astype(f32)
    nodes, inits, xq = act_quant_nodes("x", "a_", True)
    nodes += [helper.make_node("MatMulNBits", [xq, "B", "scales", "zp"], ["y"],
                               domain="com.microsoft", name="nbits", K=K, N=N,
                               bits=2, block_size=block)]
    inits += [const("B", packed), const("scales", np.full(N * blocks, c, f32)),
              const("zp", zp.reshape(-1))]
    m = model(nodes, [vi("x", F, [3, K])], [vi("y", F, [3, N])], inits,
              extra_opsets=[("com.microsoft", 1)])
    save_case("matmulnbits_ternary", m, [("x", xk)],
              [("y", (act_quant_ref(xk, True) @ (t.T * c).astype(f32)).astype(f32))])
    # A MatMul whose weight is not ternary stays a float MatMul.
    w = RNG.standard_normal((16, 8)).astype(f32)
    nodes, inits, xq = act_quant_nodes("x", "a_", True)
    nodes += [helper.make_node("MatMul", [xq, "w"], ["y"], name="proj")]
    inits += [const("w", w)]
    m = model(nodes, [vi("x", F, [2, 3, 16])], [vi("y", F, [2, 3, 8])], inits)
    save_case("float_matmul", m, [("x", x)], [("y", (xr @ w).astype(f32))])
    initializers()


def main():
    if os.path.isdir(MODELS):
        shutil.rmtree(MODELS)
    os.makedirs(MODELS)
    for f in os.listdir(INPUTS):
        if f.endswith(".onnx") or f.endswith(".bin"):
            os.remove(os.path.join(INPUTS, f))
    malformed()
    valid()


if __name__ == "__main__":
    main()
