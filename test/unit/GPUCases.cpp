//===- GPUCases.cpp - The GPU execution cases -----------------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Bit for bit where the contract says so (the int32 dot products, hence
// bitlinear outputs computed with the same float operations, and the KV
// caches), within 1e-5 relative for RMSNorm, RoPE and attention, and within
// 5% of the largest logit with the same next token for the bundled decoder
// against its CPU build (float parts in another order can move an activation
// across a quantisation step).
//
//===----------------------------------------------------------------------===//

#include "GPUCases.h"
#include "ModelText.h"

#include "bitnet/Reference/Numerics.h"

#include <cmath>
#include <cstring>
#include <functional>

using bitnet::gpu::Buffer;
using bitnet::gpu::Case;
using bitnet::gpu::Compare;
using bitnet::gpu::output;
using bitnet::gpu::Step;
using bitnet::gpu::StepKind;

namespace bitnet::test {
namespace {

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  if (!v.empty())
    std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

template <typename T>
Buffer buffer(int32_t index, const std::vector<T> &v,
              Compare compare = Compare::Bits, float tolerance = 0) {
  return Buffer{index, bytesOf(v), compare, tolerance};
}

Step upload(int32_t index, std::vector<uint8_t> bytes) {
  Step s;
  s.kind = StepKind::Upload;
  s.inputs.push_back(Buffer{index, std::move(bytes)});
  return s;
}

Step kindOnly(StepKind kind) {
  Step s;
  s.kind = kind;
  return s;
}

Step download(Buffer expected) {
  Step s;
  s.kind = StepKind::Download;
  s.expected.push_back(std::move(expected));
  return s;
}

std::string dims(std::initializer_list<int64_t> shape) {
  return shapeStr(std::vector<int64_t>(shape));
}

/// A bitlinear model with int8 ternary constant weights.
std::string bitlinearModel(int64_t m, int64_t n, int64_t k,
                           const std::vector<int8_t> &w, float scale) {
  std::vector<int64_t> values(w.begin(), w.end());
  std::string x = "tensor<" + dims({m, k}) + "f32>",
              y = "tensor<" + dims({m, n}) + "f32>",
              t = "!bitnet.ternary<" + std::to_string(n) + "x" +
                  std::to_string(k) + ", int8>";
  return "func.func @f(%x: " + x + " {bitnet.name = \"x\"}) -> " + y +
         " attributes {bitnet.output_names = [\"y\"]} {\n"
         "  %w = bitnet.constant " + denseInt(values, {n, k}) + " : tensor<" +
         dims({n, k}) + "i8> -> " + t + "\n"
         "  %s = arith.constant " + denseF32({scale}, {}) + " : tensor<f32>\n"
         "  %y = bitnet.bitlinear %x, %w scale %s : " + x + ", " + t +
         ", tensor<f32> -> " + y + "\n"
         "  return %y : " + y + "\n}\n";
}

/// `rows`: the W2A8 kernel's weight rows per warp, or 0 for the layout the
/// compiler chooses.
Case bitlinearCase(int64_t m, int64_t n, int64_t k, int64_t rows = 0) {
  std::vector<int8_t> w = randomTernary(n * k, 7);
  float scale = 0.73f;
  std::vector<float> x = randomFloats(m * k, 11);
  Case c;
  c.mlir = bitlinearModel(m, n, k, w, scale);
  if (rows)
    c.gpuFlags = {"--gpu-gemv-rows=" + std::to_string(rows)};
  Step run;
  run.inputs.push_back(buffer(0, x));
  run.expected.push_back(
      buffer(output(0), bitnet::ref::bitlinear(x.data(), w.data(), scale, m, n, k)));
  c.steps.push_back(std::move(run));
  return c;
}

// An RMSNorm read by two bitlinear layers alone, as before q/k/v: on the GPU
// one kernel normalises and quantises for both, in rows of the wider of
// their two layouts (N 8 and N 64 of K 128 choose different ones). 13
// tokens: a GEMM of 8-token blocks, so the kernel also zeroes 3 padding
// rows.
Case rmsnormBitlinearCase() {
  const int64_t m = 13, k = 128, na = 8, nb = 64;
  std::vector<float> gamma = randomFloats(k, 21), x = randomFloats(m * k, 23);
  std::vector<int8_t> wa = randomTernary(na * k, 25), wb = randomTernary(nb * k, 27);
  float sa = 0.61f, sb = 1.37f;
  auto weight = [&](const char *name, const std::vector<int8_t> &w, int64_t n,
                    float scale) {
    std::vector<int64_t> values(w.begin(), w.end());
    std::string t = "!bitnet.ternary<" + dims({n}) + std::to_string(k) + ", int8>";
    return "  %w" + std::string(name) + " = bitnet.constant " +
           denseInt(values, {n, k}) + " : tensor<" + dims({n, k}) + "i8> -> " +
           t + "\n  %s" + name + " = arith.constant " + denseF32({scale}, {}) +
           " : tensor<f32>\n  %y" + name + " = bitnet.bitlinear %n, %w" + name +
           " scale %s" + name + " : tensor<13x128xf32>, " + t +
           ", tensor<f32> -> tensor<13x" + std::to_string(n) + "xf32>\n";
  };
  Case c;
  c.mlir = "func.func @f(%x: tensor<13x128xf32>) -> (tensor<13x8xf32>, "
           "tensor<13x64xf32>) {\n"
           "  %g = arith.constant " + denseF32(gamma, {k}) + " : tensor<128xf32>\n"
           "  %n = bitnet.rmsnorm %x, %g : tensor<13x128xf32>, tensor<128xf32> -> "
           "tensor<13x128xf32>\n" +
           weight("a", wa, na, sa) + weight("b", wb, nb, sb) +
           "  return %ya, %yb : tensor<13x8xf32>, tensor<13x64xf32>\n}\n";
  std::vector<float> n = bitnet::ref::rmsnorm(x.data(), gamma.data(), m, k, 1e-5f);
  Step run;
  run.inputs.push_back(buffer(0, x));
  // The kernel sums the squares in another order than the reference. On
  // these inputs every normalised value still quantises the same, so the
  // outputs agree to float rounding; one that quantised to its neighbour
  // would move an output by about scale / 127 of its row's largest value,
  // far outside the tolerance.
  run.expected.push_back(buffer(output(0),
                                bitnet::ref::bitlinear(n.data(), wa.data(), sa, m, na, k),
                                Compare::Near, 1e-4f));
  run.expected.push_back(buffer(output(1),
                                bitnet::ref::bitlinear(n.data(), wb.data(), sb, m, nb, k),
                                Compare::Near, 1e-4f));
  c.steps.push_back(std::move(run));
  return c;
}

// The FFN's sub-norm over relu(gate)^2 * up, read by the down projection
// alone: one kernel computes the product, normalises and quantises. Both
// operand orders of the multiply; K 300 is not a multiple of 64.
Case gatedNormCase() {
  const int64_t m = 5, k = 300, n = 40;
  std::vector<float> a = randomFloats(m * k, 41), b = randomFloats(m * k, 43),
                     gamma = randomFloats(k, 45);
  std::vector<int8_t> w = randomTernary(n * k, 47);
  float scale = 0.47f;
  std::vector<int64_t> values(w.begin(), w.end());
  std::string x = "tensor<5x300xf32>", t = "!bitnet.ternary<40x300, int8>";
  auto down = [&](const std::string &i) {
    return "  %n" + i + " = bitnet.rmsnorm %p" + i + ", %g : " + x +
           ", tensor<300xf32> -> " + x + "\n  %y" + i +
           " = bitnet.bitlinear %n" + i + ", %w scale %s : " + x + ", " + t +
           ", tensor<f32> -> tensor<5x40xf32>\n";
  };
  Case c;
  c.mlir = "func.func @f(%a: " + x + ", %b: " + x +
           ") -> (tensor<5x40xf32>, tensor<5x40xf32>) {\n"
           "  %g = arith.constant " + denseF32(gamma, {k}) + " : tensor<300xf32>\n"
           "  %w = bitnet.constant " + denseInt(values, {n, k}) +
           " : tensor<40x300xi8> -> " + t + "\n"
           "  %s = arith.constant " + denseF32({scale}, {}) + " : tensor<f32>\n"
           "  %h1 = bitnet.squared_relu %a : " + x + "\n"
           "  %p1 = arith.mulf %h1, %b : " + x + "\n" + down("1") +
           "  %h2 = bitnet.squared_relu %b : " + x + "\n"
           "  %p2 = arith.mulf %a, %h2 : " + x + "\n" + down("2") +
           "  return %y1, %y2 : tensor<5x40xf32>, tensor<5x40xf32>\n}\n";
  std::vector<float> ha = bitnet::ref::squaredRelu(a.data(), m * k),
                     hb = bitnet::ref::squaredRelu(b.data(), m * k);
  std::vector<float> p1(m * k), p2(m * k);
  for (int64_t i = 0; i < m * k; ++i) {
    p1[i] = ha[i] * b[i];
    p2[i] = a[i] * hb[i];
  }
  std::vector<float> n1 = bitnet::ref::rmsnorm(p1.data(), gamma.data(), m, k, 1e-5f),
                     n2 = bitnet::ref::rmsnorm(p2.data(), gamma.data(), m, k, 1e-5f);
  Step run;
  run.inputs.push_back(buffer(0, a));
  run.inputs.push_back(buffer(1, b));
  // As rmsnorm_bitlinear: the sums of squares add in another order, and
  // these inputs still quantise the same.
  run.expected.push_back(buffer(
      output(0), bitnet::ref::bitlinear(n1.data(), w.data(), scale, m, n, k),
      Compare::Near, 1e-4f));
  run.expected.push_back(buffer(
      output(1), bitnet::ref::bitlinear(n2.data(), w.data(), scale, m, n, k),
      Compare::Near, 1e-4f));
  c.steps.push_back(std::move(run));
  return c;
}

// Residual adds of bitlinear outputs, y + r and r + y (the o and down
// projections of a decoder layer): the GEMV adds r as its last step, bit for
// bit as an add kernel after it would. 11 tokens: a GEMM with a partial
// second token block.
Case bitlinearResidualCase() {
  const int64_t m = 11, k = 200, n = 70;
  std::vector<float> x = randomFloats(m * k, 31), r = randomFloats(m * n, 33);
  std::vector<int8_t> wa = randomTernary(n * k, 35), wb = randomTernary(n * k, 37);
  float sa = 0.83f, sb = 0.29f;
  std::string t = "!bitnet.ternary<70x200, int8>";
  auto layer = [&](const char *name, const std::vector<int8_t> &w, float scale) {
    std::vector<int64_t> values(w.begin(), w.end());
    return "  %w" + std::string(name) + " = bitnet.constant " +
           denseInt(values, {n, k}) + " : tensor<70x200xi8> -> " + t +
           "\n  %s" + name + " = arith.constant " + denseF32({scale}, {}) +
           " : tensor<f32>\n  %l" + name + " = bitnet.bitlinear %x, %w" + name +
           " scale %s" + name + " : tensor<11x200xf32>, " + t +
           ", tensor<f32> -> tensor<11x70xf32>\n";
  };
  Case c;
  c.mlir = "func.func @f(%x: tensor<11x200xf32>, %r: tensor<11x70xf32>) -> "
           "(tensor<11x70xf32>, tensor<11x70xf32>) {\n" +
           layer("a", wa, sa) + layer("b", wb, sb) +
           "  %ya = arith.addf %la, %r : tensor<11x70xf32>\n"
           "  %yb = arith.addf %r, %lb : tensor<11x70xf32>\n"
           "  return %ya, %yb : tensor<11x70xf32>, tensor<11x70xf32>\n}\n";
  std::vector<float> ya = bitnet::ref::bitlinear(x.data(), wa.data(), sa, m, n, k);
  std::vector<float> yb = bitnet::ref::bitlinear(x.data(), wb.data(), sb, m, n, k);
  for (int64_t i = 0; i < m * n; ++i) {
    ya[i] += r[i];
    yb[i] = r[i] + yb[i];
  }
  Step run;
  run.inputs.push_back(buffer(0, x));
  run.inputs.push_back(buffer(1, r));
  run.expected.push_back(buffer(output(0), ya));
  run.expected.push_back(buffer(output(1), yb));
  c.steps.push_back(std::move(run));
  return c;
}

Case rmsnormReluAddCase() {
  int64_t rows = 3, d = 300;
  std::vector<float> gamma = randomFloats(d, 5), x = randomFloats(rows * d, 3);
  Case c;
  c.mlir =
      "func.func @f(%x: tensor<3x300xf32>) -> tensor<3x300xf32> {\n"
      "  %g = arith.constant " + denseF32(gamma, {d}) + " : tensor<300xf32>\n"
      "  %n = bitnet.rmsnorm %x, %g : tensor<3x300xf32>, tensor<300xf32> -> tensor<3x300xf32>\n"
      "  %r = bitnet.squared_relu %n : tensor<3x300xf32>\n"
      "  %y = arith.addf %r, %x : tensor<3x300xf32>\n"
      "  return %y : tensor<3x300xf32>\n}\n";
  std::vector<float> n = bitnet::ref::rmsnorm(x.data(), gamma.data(), rows, d, 1e-5f);
  std::vector<float> y = bitnet::ref::squaredRelu(n.data(), rows * d);
  for (int64_t i = 0; i < rows * d; ++i)
    y[i] += x[i];
  Step run;
  run.inputs.push_back(buffer(0, x));
  run.expected.push_back(buffer(output(0), y, Compare::Near, 1e-5f));
  c.steps.push_back(std::move(run));
  return c;
}

Case ropeCase(const std::string &style) {
  const int64_t s = 3, h = 2, d = 8;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x = normalVector(rng, normal, s * h * d);
  std::vector<int32_t> pos = {0, 5, 1000};
  std::vector<int64_t> pos64(pos.begin(), pos.end());
  Case c;
  c.mlir = "func.func @rope(%x: tensor<3x2x8xf32>, %p: tensor<3xi32>) -> "
           "tensor<3x2x8xf32> {\n"
           "  %y = bitnet.rope %x, %p {theta = 500000.0 : f32, style = "
           "#bitnet.rope_style<" + style + ">} : tensor<3x2x8xf32>, "
           "tensor<3xi32> -> tensor<3x2x8xf32>\n"
           "  return %y : tensor<3x2x8xf32>\n}\n";
  Step run;
  run.inputs.push_back(buffer(0, x));
  run.inputs.push_back(buffer(1, pos));
  run.expected.push_back(buffer(
      output(0),
      bitnet::ref::rope(x.data(), pos64.data(), s, h, d, 500000.0f,
                        style == "interleaved"),
      Compare::Near, 1e-5f));
  c.steps.push_back(std::move(run));
  return c;
}

struct AttentionShape {
  int64_t s, hq, hkv, d, cap;
  std::string name() const {
    return "s" + std::to_string(s) + "_h" + std::to_string(hq) + "_kv" +
           std::to_string(hkv) + "_d" + std::to_string(d) + "_c" +
           std::to_string(cap);
  }
};

constexpr AttentionShape kAttentionShapes[] = {
    {1, 4, 1, 32, 9}, {5, 6, 3, 16, 12}, {2, 8, 2, 64, 7},
    // The 2B model's heads at decode, a long cache.
    {1, 20, 5, 128, 600}};

/// Normal random query, key and value rows and caches of shape `a`.
struct AttentionInputs {
  std::vector<float> q, k, v, kc, vc;
  AttentionInputs(const AttentionShape &a, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](int64_t n) { return normalVector(rng, normal, n); };
    q = random(a.s * a.hq * a.d);
    k = random(a.s * a.hkv * a.d);
    v = random(a.s * a.hkv * a.d);
    kc = random(a.cap * a.hkv * a.d);
    vc = random(a.cap * a.hkv * a.d);
  }
};

// f32 caches through bitnet_context_run: the caches are state inputs, copied
// to the device and back, updated bit for bit as the reference does.
Case attentionF32Case(const AttentionShape &a) {
  AttentionInputs in(a, static_cast<unsigned>(a.s * 131 + a.d));
  const auto &[q, k, v, kc, vc] = in;
  Case c;
  c.mlir = attentionModel(a.s, a.hq, a.hkv, a.d, a.cap);
  c.flags = {"--kv-cache=f32"};
  // The last position is the last the cache takes: the runtime refuses a
  // later one (BITNET_TENSOR_RANGE) that the kernels would clamp.
  for (int32_t position : {0, 1, static_cast<int32_t>(a.cap - a.s)}) {
    Step run;
    for (const auto *input : {&q, &k, &v, &kc, &vc})
      run.inputs.push_back(buffer(int32_t(run.inputs.size()), *input));
    run.inputs.push_back(buffer(5, std::vector<int32_t>{position}));
    std::vector<float> kRef = kc, vRef = vc;
    std::vector<float> o = bitnet::ref::attention(
        q.data(), k.data(), v.data(), kRef.data(), vRef.data(), position, a.s,
        a.hq, a.hkv, a.d, a.cap, 1.0f / std::sqrt(float(a.d)));
    run.expected.push_back(buffer(output(0), o, Compare::Near, 1e-5f));
    run.expected.push_back(buffer(3, kRef));
    run.expected.push_back(buffer(4, vRef));
    c.steps.push_back(std::move(run));
  }
  return c;
}

// RoPE of the query (half) and of the key (interleaved) read by attention
// alone, as in a decoder layer: on the GPU one kernel rotates both and writes
// the rotated keys straight into the cache. f32 caches through
// bitnet_context_run, at positions 0 and 5 and the last, cap - s.
Case ropedAttentionCase() {
  const AttentionShape a{2, 6, 3, 16, 12};
  const float theta = 10000.0f;
  AttentionInputs in(a, 71);
  const auto &[q, k, v, kc, vc] = in;
  std::string qt = "tensor<2x6x16xf32>", kt = "tensor<2x3x16xf32>",
              ct = "tensor<12x3x16xf32>";
  auto rope = [&](const char *y, const char *x, const std::string &type,
                  const char *style) {
    return std::string("  ") + y + " = bitnet.rope " + x +
           ", %p {theta = 10000.0 : f32, style = #bitnet.rope_style<" + style +
           ">} : " + type + ", tensor<2xi32> -> " + type + "\n";
  };
  Case c;
  c.mlir = "func.func @attn(%q: " + qt + ", %k: " + kt + ", %v: " + kt +
           ", %kc: " + ct + ", %vc: " + ct +
           ", %pos: tensor<i32>, %p: tensor<2xi32>) -> (" + qt + ", " + ct +
           ", " + ct + ") {\n" + rope("%qr", "%q", qt, "half") +
           rope("%kr", "%k", kt, "interleaved") +
           "  %o, %kc1, %vc1 = bitnet.attention %qr, %kr, %v, %kc, %vc, %pos : " +
           qt + ", " + kt + ", " + kt + ", " + ct + ", " + ct +
           ", tensor<i32> -> " + qt + ", " + ct + ", " + ct + "\n"
           "  return %o, %kc1, %vc1 : " + qt + ", " + ct + ", " + ct + "\n}\n";
  c.flags = {"--kv-cache=f32"};
  for (int32_t position : {0, 5, static_cast<int32_t>(a.cap - a.s)}) {
    // The rows' positions, as a decoder computes them: start + index.
    std::vector<int32_t> p = {position, position + 1};
    std::vector<int64_t> p64(p.begin(), p.end());
    std::vector<float> qr = bitnet::ref::rope(q.data(), p64.data(), a.s, a.hq,
                                              a.d, theta, false);
    std::vector<float> kr = bitnet::ref::rope(k.data(), p64.data(), a.s, a.hkv,
                                              a.d, theta, true);
    Step run;
    for (const auto *input : {&q, &k, &v, &kc, &vc})
      run.inputs.push_back(buffer(int32_t(run.inputs.size()), *input));
    run.inputs.push_back(buffer(5, std::vector<int32_t>{position}));
    run.inputs.push_back(buffer(6, p));
    std::vector<float> kRef = kc, vRef = vc;
    std::vector<float> o = bitnet::ref::attention(
        qr.data(), kr.data(), v.data(), kRef.data(), vRef.data(), position,
        a.s, a.hq, a.hkv, a.d, a.cap, 1.0f / std::sqrt(float(a.d)));
    // The GPU's sin and cos are libdevice's: within 1e-5 of the host's, as
    // in the rope cases; the value rows are copied bit for bit.
    run.expected.push_back(buffer(output(0), o, Compare::Near, 1e-4f));
    run.expected.push_back(buffer(3, kRef, Compare::Near, 1e-5f));
    run.expected.push_back(buffer(4, vRef));
    c.steps.push_back(std::move(run));
  }
  return c;
}

std::vector<uint16_t> halfBits(const std::vector<float> &v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    _Float16 e = static_cast<_Float16>(v[i]);
    std::memcpy(&h[i], &e, 2);
  }
  return h;
}

std::vector<float> roundF16(std::vector<float> v) {
  for (float &e : v)
    e = static_cast<float>(static_cast<_Float16>(e));
  return v;
}

// f16 caches (the default) kept on the device over several decode steps:
// zeroed once, then only the new rows, the query and the position move.
// Against the reference on f16-rounded rows.
Case attentionF16Case(const AttentionShape &a) {
  std::mt19937 rng(static_cast<unsigned>(a.s * 7 + a.d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t n) { return normalVector(rng, normal, n); };
  Case c;
  c.mlir = attentionModel(a.s, a.hq, a.hkv, a.d, a.cap);
  c.steps.push_back(kindOnly(StepKind::ZeroState));
  std::vector<float> kRef(a.cap * a.hkv * a.d, 0.0f), vRef(kRef.size(), 0.0f);
  for (int32_t position = 0; position + a.s <= a.cap && position < 3 * a.s;
       position += static_cast<int32_t>(a.s)) {
    std::vector<float> q = random(a.s * a.hq * a.d),
                       k = random(a.s * a.hkv * a.d),
                       v = random(a.s * a.hkv * a.d);
    c.steps.push_back(upload(0, bytesOf(q)));
    c.steps.push_back(upload(1, bytesOf(k)));
    c.steps.push_back(upload(2, bytesOf(v)));
    c.steps.push_back(upload(5, bytesOf(std::vector<int32_t>{position})));
    c.steps.push_back(kindOnly(StepKind::Launch));
    std::vector<float> kR = roundF16(k), vR = roundF16(v);
    std::vector<float> o = bitnet::ref::attention(
        q.data(), kR.data(), vR.data(), kRef.data(), vRef.data(), position,
        a.s, a.hq, a.hkv, a.d, a.cap, 1.0f / std::sqrt(float(a.d)));
    c.steps.push_back(download(buffer(output(0), o, Compare::Near, 1e-5f)));
  }
  c.steps.push_back(download(buffer(3, halfBits(kRef))));
  c.steps.push_back(download(buffer(4, halfBits(vRef))));
  return c;
}

// The bundled decoder, a whole step on the GPU, over a few decode steps: the
// KV caches stay on the device (zeroed once); the logits are compared with
// those of its CPU build.
Case fortunesCase() {
  Case c;
  c.sourceFile = BITNET_FORTUNES_MODEL;
  c.flags = {"--input-shape=tokens:1"};
  c.cpuReference = true;
  c.steps.push_back(kindOnly(StepKind::ZeroState));
  for (int32_t position = 0; position < 6; ++position) {
    // Tokens below 40: inside the model's byte-level vocabulary.
    int32_t token = 7 * position + 3;
    c.steps.push_back(upload(0, bytesOf(std::vector<int32_t>{token})));
    c.steps.push_back(upload(1, bytesOf(std::vector<int32_t>{position})));
    c.steps.push_back(kindOnly(StepKind::Launch));
    c.steps.push_back(download(Buffer{output(0), {}, Compare::Logits, 0.05f}));
  }
  return c;
}

struct Entry {
  std::string name;
  std::function<Case()> make;
};

std::vector<Entry> entries() {
  std::vector<Entry> list;
  for (auto [m, n, k] : std::initializer_list<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 64, 64}, {1, 100, 200}, {3, 256, 640}, {8, 96, 2560},
           {13, 70, 320}, {1, 2560, 2560}})
    list.push_back({"bitlinear_" + dims({m, n}) + std::to_string(k),
                    [=] { return bitlinearCase(m, n, k); }});
  // Layouts the compiler would not choose for these shapes: 32 rows per warp
  // over 17 and 43 steps of K (loops of 8-load batches, with a rest; one
  // token and a 2-token block), and 1 row per warp (K padded from 5 chunks
  // to 32).
  for (auto [m, n, k, rows] :
       std::initializer_list<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 40, 1088, 32}, {2, 33, 2700, 32}, {3, 50, 300, 1}})
    list.push_back({"bitlinear_" + dims({m, n}) + std::to_string(k) + "_r" +
                        std::to_string(rows),
                    [=] { return bitlinearCase(m, n, k, rows); }});
  list.push_back({"rmsnorm_relu_add", rmsnormReluAddCase});
  list.push_back({"rmsnorm_bitlinear", rmsnormBitlinearCase});
  list.push_back({"bitlinear_residual", bitlinearResidualCase});
  list.push_back({"gated_norm", gatedNormCase});
  for (std::string style : {"half", "interleaved"})
    list.push_back({"rope_" + style, [=] { return ropeCase(style); }});
  for (const AttentionShape &a : kAttentionShapes)
    list.push_back({"attention_f32_" + a.name(), [=] { return attentionF32Case(a); }});
  list.push_back({"roped_attention", ropedAttentionCase});
  for (const AttentionShape &a : kAttentionShapes)
    list.push_back({"attention_f16_" + a.name(), [=] { return attentionF16Case(a); }});
  list.push_back({"fortunes_decoder", fortunesCase});
  return list;
}

} // namespace

std::vector<std::string> gpuCaseNames() {
  std::vector<std::string> names;
  for (const Entry &e : entries())
    names.push_back(e.name);
  return names;
}

std::optional<bitnet::gpu::Case> gpuCase(const std::string &name) {
  for (const Entry &e : entries())
    if (e.name == name) {
      Case c = e.make();
      c.name = name;
      return c;
    }
  return std::nullopt;
}

} // namespace bitnet::test
