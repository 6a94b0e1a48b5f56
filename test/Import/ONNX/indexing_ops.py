#!/usr/bin/env python3
"""Compiles and runs small ONNX graphs of the indexing operations on cases
ONNX's backend node tests leave out (ties, NaN, duplicates, negative pads and
indices, broadcasting, other element types) and compares every result with
numpy. Exits non-zero when a case fails to compile or differs."""

import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, mapping, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "backend"))
import run_backend_tests as backend  # noqa: E402

CASES = []


def case(name, op, inputs, expected, attrs=None, consts=None, opset=17,
         extra_inputs=()):
    """A one-node graph of `op`: `inputs` are graph inputs, `consts`
    initialisers; the node takes the graph inputs then the initialisers, or
    the names in `extra_inputs` in that order."""
    CASES.append((name, op, inputs, consts or {}, expected, attrs or {}, opset,
                  extra_inputs))


def vinfo(name, a):
    return helper.make_tensor_value_info(
        name, mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)


def build(name, op, inputs, consts, expected, attrs, opset, order):
    names = order or list(inputs) + list(consts)
    outs = ["out%d" % k for k in range(len(expected))]
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], name, [vinfo(k, v) for k, v in inputs.items()],
        [vinfo(o, e) for o, e in zip(outs, expected)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run(compiler, work, c):
    name, op, inputs, consts, expected, attrs, opset, order = c
    model = build(name, op, inputs, consts, expected, attrs, opset, order)
    path = os.path.join(work, name + ".onnx")
    onnx.save(model, path)
    so = os.path.join(work, name + ".so")
    proc = subprocess.run([compiler, path, "-o", so], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return "compile failed:\n" + proc.stderr[-2000:]
    got = backend.run_compiled(so, inputs, [e.dtype for e in expected])
    for k, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape:
            return "output %d: shape %s, expected %s" % (k, g.shape, e.shape)
        ok = (np.allclose(g, e, rtol=1e-5, atol=1e-6, equal_nan=True)
              if e.dtype.kind == "f" else np.array_equal(g, e))
        if not ok:
            return "output %d differs:\n got %s\nwant %s" % (k, g, e)
    return None


def add_cases():
    rng = np.random.default_rng(7)
    i64 = np.int64

    # TopK: ties keep the lower index first; NaN sorts last either way.
    x = np.array([[3, 1, 3, 2, 1], [5, 5, 5, 5, 5], [0, 9, -4, 9, 2]],
                 dtype=np.int32)
    for largest in (1, 0):
        order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :3]
        case("topk_ties_%d" % largest, "TopK", {"x": x},
             [np.take_along_axis(x, order, 1), order.astype(i64)],
             {"axis": 1, "largest": largest},
             consts={"k": np.array([3], dtype=i64)})
    xf = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, -1.0]], dtype=np.float32).T
    order = np.array([[2, 0], [0, 1]])  # along axis 0: 3 > 1 > nan
    case("topk_nan_axis0", "TopK", {"x": xf},
         [np.take_along_axis(xf, order, 0), order.astype(i64)], {"axis": 0},
         consts={"k": np.array([2], dtype=i64)})

    # Pad: negative pads crop before edge/reflect padding.
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    for mode in ("constant", "edge", "reflect"):
        pads = np.array([-1, 2, 1, -2], dtype=i64)  # begins, then ends
        cropped = x[1:, :3]
        kw = {"constant_values": 0.5} if mode == "constant" else {}
        want = np.pad(cropped, ((0, 1), (2, 0)), mode=mode, **kw)
        consts = {"pads": pads}
        if mode == "constant":
            consts["value"] = np.array(0.5, dtype=np.float32)
        case("pad_negative_" + mode, "Pad", {"x": x}, [want],
             {"mode": mode}, consts=consts)
    xi = np.arange(6, dtype=np.float32).reshape(2, 3)
    case("pad_attr_v2", "Pad", {"x": xi},
         [np.pad(xi, ((1, 0), (0, 2)), constant_values=7)],
         {"mode": "constant", "pads": [1, 0, 0, 2], "value": 7.0}, opset=10)

    # ScatterElements: duplicates apply in order (last wins, or combine).
    data = np.ones((2, 4), dtype=np.float32)
    idx = np.array([[1, 1, -1], [0, 3, 0]], dtype=i64)
    upd = np.array([[2, 3, 4], [5, 6, 7]], dtype=np.float32)
    for red in ("none", "add", "mul"):
        want = data.copy()
        for r in range(2):
            for c in range(3):
                j = idx[r, c] % 4
                if red == "none":
                    want[r, j] = upd[r, c]
                elif red == "add":
                    want[r, j] += upd[r, c]
                else:
                    want[r, j] *= upd[r, c]
        case("scatter_elements_dup_" + red, "ScatterElements",
             {"data": data, "indices": idx, "updates": upd}, [want],
             {"axis": 1, "reduction": red})
    # Updates smaller than the data outside the axis.
    data = np.zeros((3, 3), dtype=np.int32)
    idx = np.array([[2], [0]], dtype=i64)
    upd = np.array([[5], [6]], dtype=np.int32)
    want = data.copy()
    want[0, 2], want[1, 0] = 5, 6
    case("scatter_elements_partial", "ScatterElements",
         {"data": data, "indices": idx, "updates": upd}, [want], {"axis": 1})

    # ScatterND: duplicate slices add up; negative indices.
    data = np.arange(12, dtype=np.int64).reshape(3, 4)
    idx = np.array([[[1]], [[-2]], [[0]]], dtype=i64)
    upd = np.arange(12, dtype=np.int64).reshape(3, 1, 4) * 10
    want = data.copy()
    for k in range(3):
        want[idx[k, 0, 0]] += upd[k, 0]
    case("scatternd_dup_add", "ScatterND",
         {"data": data, "indices": idx, "updates": upd}, [want],
         {"reduction": "add"})
    idx2 = np.array([[0, 3], [2, -1]], dtype=i64)
    upd2 = np.array([100, 200], dtype=np.int64)
    want = data.copy()
    want[0, 3], want[2, 3] = 100, 200
    case("scatternd_elements", "ScatterND",
         {"data": data, "indices": idx2, "updates": upd2}, [want])

    # Einsum: broadcast ellipsis, trace, implicit output, integers.
    a = rng.standard_normal((3, 2, 4)).astype(np.float32)
    b = rng.standard_normal((1, 4, 5)).astype(np.float32)
    case("einsum_ellipsis_broadcast", "Einsum", {"a": a, "b": b},
         [np.einsum("...ij,...jk->...ik", a, b)],
         {"equation": "...ij,...jk->...ik"})
    m = np.arange(16, dtype=np.int32).reshape(4, 4)
    case("einsum_trace", "Einsum", {"m": m}, [np.einsum("ii", m)],
         {"equation": "ii"})
    p = rng.standard_normal((2, 3)).astype(np.float64)
    q = rng.standard_normal((3, 4)).astype(np.float64)
    case("einsum_implicit", "Einsum", {"p": p, "q": q},
         [np.einsum("ij,jk", p, q)], {"equation": "ij,jk"})
    case("einsum_outer_sum", "Einsum", {"p": p, "q": q},
         [np.einsum("ij,kl->jl", p, q)], {"equation": "ij,kl->jl"})

    # ArgMax/ArgMin: NaN wins (first), ties, unsigned values.
    x = np.array([[1, np.nan, 3, np.nan], [2, 5, 5, 1]], dtype=np.float32)
    for op, f in (("ArgMax", np.argmax), ("ArgMin", np.argmin)):
        case(op.lower() + "_nan", op, {"x": x},
             [f(x, axis=1).astype(i64)], {"axis": 1, "keepdims": 0})
        flip = x[:, ::-1]
        last = x.shape[1] - 1 - f(flip, axis=1)
        case(op.lower() + "_last", op, {"x": x},
             [last.astype(i64).reshape(2, 1)], {"axis": 1,
                                                  "select_last_index": 1})
    u = np.array([[200, 3, 255], [0, 128, 127]], dtype=np.uint8)
    case("argmax_uint8", "ArgMax", {"u": u},
         [np.argmax(u, axis=0).astype(i64).reshape(1, 3)], {"axis": 0})
    case("argmin_uint8", "ArgMin", {"u": u},
         [np.argmin(u, axis=-1).astype(i64)], {"axis": -1, "keepdims": 0})

    # CumSum: reverse exclusive on an inner axis of int32.
    x = rng.integers(-9, 9, size=(2, 3, 4)).astype(np.int32)
    rev = np.flip(np.cumsum(np.flip(x, 1), 1), 1) - x
    case("cumsum_int32_reverse_exclusive", "CumSum", {"x": x},
         [rev.astype(np.int32)], {"exclusive": 1, "reverse": 1},
         consts={"axis": np.array(-2, dtype=i64)})
    case("cumsum_float_axis2", "CumSum", {"x": x.astype(np.float32)},
         [np.cumsum(x.astype(np.float32), 2)],
         consts={"axis": np.array(2, dtype=np.int32)})

    # GatherND with batch_dims and negative indices; GatherElements 3-D.
    d = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ind = np.array([[[-1], [0]], [[1], [2]]], dtype=i64)
    want = np.stack([d[0][[2, 0]], d[1][[1, 2]]])
    case("gathernd_batch_negative", "GatherND", {"d": d, "i": ind}, [want],
         {"batch_dims": 1})
    ge = rng.integers(-3, 3, size=(2, 3, 2)).astype(np.int32)
    want = np.take_along_axis(d[:, :, :2], (ge % 3).astype(i64), axis=1)
    case("gather_elements_3d", "GatherElements", {"d": d, "i": ge}, [want],
         {"axis": 1})

    # OneHot on axis 0 with an out-of-range index (all off).
    ind = np.array([1, -1, 7, 0], dtype=i64)
    vals = np.array([-2, 3], dtype=np.int64)
    want = np.full((5, 4), -2, dtype=np.int64)
    for k, v in enumerate(ind):
        if -5 <= v < 5:
            want[v % 5, k] = 3
    case("onehot_axis0", "OneHot", {"i": ind, "v": vals}, [want], {"axis": 0},
         consts={"depth": np.array(5, dtype=i64)},
         extra_inputs=("i", "depth", "v"))

    # Compress with a condition shorter than the axis.
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    cond = np.array([False, True, True])
    case("compress_short", "Compress", {"x": x}, [x[:, [1, 2]]], {"axis": 1},
         consts={"c": cond})

    # Tile, DepthToSpace (CRD), SpaceToDepth on integers.
    x = np.arange(6, dtype=np.int64).reshape(1, 2, 3)
    case("tile_int64", "Tile", {"x": x}, [np.tile(x, (2, 1, 2))],
         consts={"r": np.array([2, 1, 2], dtype=i64)})
    x = np.arange(32, dtype=np.int32).reshape(1, 8, 2, 2)
    b = 2
    tmp = x.reshape(1, 2, b, b, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    case("depth_to_space_crd_int", "DepthToSpace", {"x": x},
         [tmp.reshape(1, 2, 4, 4)], {"blocksize": 2, "mode": "CRD"})
    y = np.arange(48, dtype=np.int8).reshape(1, 3, 4, 4)
    tmp = y.reshape(1, 3, 2, b, 2, b).transpose(0, 3, 5, 1, 2, 4)
    case("space_to_depth_int8", "SpaceToDepth", {"y": y},
         [tmp.reshape(1, 12, 2, 2)], {"blocksize": 2})

    # ReverseSequence with lengths 0, 1 and full.
    x = np.arange(12, dtype=np.float32).reshape(3, 4)  # batch on axis 0
    lens = np.array([0, 1, 4], dtype=i64)
    want = x.copy()
    for bi, n in enumerate(lens):
        want[bi, :n] = x[bi, :n][::-1]
    case("reverse_sequence_lens", "ReverseSequence", {"x": x, "l": lens},
         [want], {"batch_axis": 0, "time_axis": 1})

    # NonZero of a constant (folded), Flatten at axis = rank, EyeLike.
    c = np.array([[0.0, -1.5], [np.nan, 0.0], [2.0, 0.0]], dtype=np.float32)
    case("nonzero_constant", "NonZero", {}, [np.array(np.nonzero(c))],
         consts={"c": c})
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    case("flatten_axis_rank", "Flatten", {"x": x}, [x.reshape(24, 1)],
         {"axis": 3})
    e = np.zeros((3, 5), dtype=np.int32)
    case("eyelike_bool_negative_k", "EyeLike", {"e": e},
         [np.eye(3, 5, k=-1, dtype=bool)], {"dtype": 9, "k": -1})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compiler", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    add_cases()
    failed = 0
    for c in CASES:
        if args.filter not in c[0]:
            continue
        err = run(args.compiler, args.work, c)
        if err:
            failed += 1
            print("FAIL %s: %s" % (c[0], err))
        else:
            print("PASS %s" % c[0])
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
