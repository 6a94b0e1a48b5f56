//===- ModelText.cpp - MLIR text of models for tests ------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "ModelText.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>

namespace bitnet::test {

std::string shapeStr(const std::vector<int64_t> &shape) {
  std::string s;
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s;
}

template <typename T, typename Print>
static std::string dense(const std::vector<T> &values,
                         const std::vector<int64_t> &shape, Print print) {
  std::ostringstream os;
  size_t index = 0;
  // Nested brackets, one level per dimension.
  std::function<void(size_t)> emit = [&](size_t dim) {
    if (dim == shape.size()) {
      print(os, values[index++]);
      return;
    }
    os << "[";
    for (int64_t i = 0; i < shape[dim]; ++i) {
      if (i)
        os << ", ";
      emit(dim + 1);
    }
    os << "]";
  };
  os << "dense<";
  emit(0);
  os << ">";
  return os.str();
}

std::string denseF32(const std::vector<float> &values,
                     const std::vector<int64_t> &shape) {
  return dense(values, shape, [](std::ostream &os, float v) {
    // Hexadecimal bit patterns round-trip every float exactly.
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    char buf[16];
    std::snprintf(buf, sizeof(buf), "0x%08X", bits);
    os << buf;
  });
}

std::string denseInt(const std::vector<int64_t> &values,
                     const std::vector<int64_t> &shape) {
  return dense(values, shape, [](std::ostream &os, int64_t v) { os << v; });
}

std::string denseHex(const void *bytes, size_t size) {
  static const char digits[] = "0123456789ABCDEF";
  std::string text = "dense<\"0x";
  text.reserve(text.size() + 2 * size + 2);
  for (size_t i = 0; i < size; ++i) {
    auto byte = static_cast<const uint8_t *>(bytes)[i];
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text + "\">";
}

std::string attentionModel(int64_t s, int64_t hq, int64_t hkv, int64_t d,
                           int64_t cap) {
  auto t = [](std::vector<int64_t> shape) {
    return "tensor<" + shapeStr(shape) + "f32>";
  };
  std::string qt = t({s, hq, d}), kt = t({s, hkv, d}), ct = t({cap, hkv, d});
  std::ostringstream mlir;
  mlir << "func.func @attn(%q: " << qt << ", %k: " << kt << ", %v: " << kt
       << ", %kc: " << ct << ", %vc: " << ct << ", %pos: tensor<i32>) -> ("
       << qt << ", " << ct << ", " << ct << ") {\n"
       << "  %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos : "
       << qt << ", " << kt << ", " << kt << ", " << ct << ", " << ct
       << ", tensor<i32> -> " << qt << ", " << ct << ", " << ct << "\n"
       << "  return %o, %kc1, %vc1 : " << qt << ", " << ct << ", " << ct
       << "\n}\n";
  return mlir.str();
}

std::vector<float> normalVector(std::mt19937 &rng,
                                std::normal_distribution<float> &normal,
                                int64_t n) {
  std::vector<float> v(n);
  for (float &e : v)
    e = normal(rng);
  return v;
}

std::vector<int8_t> randomTernary(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-1, 1);
  std::vector<int8_t> w(count);
  for (int8_t &v : w)
    v = static_cast<int8_t>(dist(rng));
  return w;
}

std::vector<float> randomFloats(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  return normalVector(rng, normal, count);
}

} // namespace bitnet::test
