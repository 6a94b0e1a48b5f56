//===- GPUCase.cpp - GPU execution cases, their files and their runner ----===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "GPUCase.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

namespace bitnet::gpu {

const char *compareName(Compare compare) {
  switch (compare) {
  case Compare::Bits:
    return "bits";
  case Compare::Near:
    return "near";
  case Compare::Logits:
    return "logits";
  }
  return "?";
}

namespace {

const char *stepName(StepKind kind) {
  switch (kind) {
  case StepKind::Run:
    return "run";
  case StepKind::Upload:
    return "upload";
  case StepKind::ZeroState:
    return "zero-state";
  case StepKind::Launch:
    return "launch";
  case StepKind::Download:
    return "download";
  }
  return "?";
}

/// The message of `st`, freed; empty for BITNET_OK.
std::string take(bitnet_status st) {
  if (!st)
    return "";
  std::string message = bitnet_status_message(st);
  bitnet_status_free(st);
  return message.empty() ? "failed" : message;
}

int64_t tensorBytes(const bitnet_tensor_info &t) {
  int64_t bytes = bitnet_dtype_size(t.dtype);
  for (int32_t d = 0; d < t.rank; ++d)
    bytes *= t.shape[d];
  return bytes;
}

float halfToFloat(uint16_t h) {
  float sign = (h & 0x8000u) ? -1.0f : 1.0f;
  int exp = (h >> 10) & 0x1f;
  int mant = h & 0x3ff;
  if (exp == 0)
    return sign * std::ldexp(float(mant), -24);
  if (exp == 31)
    return mant ? std::nanf("") : sign * INFINITY;
  return sign * std::ldexp(float(mant | 0x400), exp - 25);
}

/// Element `i` of `bytes` as a float (f32 or f16 only).
float element(const std::vector<uint8_t> &bytes, int32_t dtype, size_t i) {
  if (dtype == BITNET_DTYPE_F16) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    return halfToFloat(h);
  }
  float f;
  std::memcpy(&f, bytes.data() + 4 * i, 4);
  return f;
}

std::string text(float f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(f));
  return buf;
}

/// Compares `actual` with `expected`; an empty string when they agree.
std::string compare(const Buffer &expected, const std::vector<uint8_t> &actual,
                    int32_t dtype) {
  if (expected.bytes.size() != actual.size())
    return "expected " + std::to_string(expected.bytes.size()) +
           " bytes, the model's buffer has " + std::to_string(actual.size());
  bool floats = dtype == BITNET_DTYPE_F32 || dtype == BITNET_DTYPE_F16;
  size_t elementBytes = static_cast<size_t>(std::max<int64_t>(1, bitnet_dtype_size(dtype)));
  size_t count = actual.size() / elementBytes;
  if (expected.compare == Compare::Bits || !floats) {
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < count; ++i)
      if (std::memcmp(expected.bytes.data() + i * elementBytes,
                      actual.data() + i * elementBytes, elementBytes) != 0 &&
          differ++ == 0)
        first = i;
    if (!differ)
      return "";
    std::string message = std::to_string(differ) + " of " +
                          std::to_string(count) +
                          " elements differ in their bits; the first, " +
                          std::to_string(first);
    if (floats)
      message += ": expected " + text(element(expected.bytes, dtype, first)) +
                 ", got " + text(element(actual, dtype, first));
    return message;
  }
  float scale = 1.0f;
  if (expected.compare == Compare::Logits)
    for (size_t i = 0; i < count; ++i)
      scale = std::max(scale, std::fabs(element(expected.bytes, dtype, i)));
  size_t differ = 0, first = 0, argE = 0, argA = 0;
  for (size_t i = 0; i < count; ++i) {
    float e = element(expected.bytes, dtype, i), a = element(actual, dtype, i);
    float bound = expected.tolerance *
                  (expected.compare == Compare::Logits ? scale
                                                       : std::max(1.0f, std::fabs(e)));
    if (!(std::fabs(e - a) <= bound) && differ++ == 0)
      first = i;
    if (e > element(expected.bytes, dtype, argE))
      argE = i;
    if (a > element(actual, dtype, argA))
      argA = i;
  }
  std::string tol = text(expected.tolerance) +
                    (expected.compare == Compare::Logits ? " of the largest |value|"
                                                         : " relative");
  if (differ)
    return std::to_string(differ) + " of " + std::to_string(count) +
           " elements off by more than " + tol + "; the first, " +
           std::to_string(first) + ": expected " +
           text(element(expected.bytes, dtype, first)) + ", got " +
           text(element(actual, dtype, first));
  if (expected.compare == Compare::Logits && argE != argA)
    return "the largest element is " + std::to_string(argA) +
           ", expected " + std::to_string(argE);
  return "";
}

} // namespace

namespace {

/// Run buffer of case index `index` (see output()), or -1 when the model has
/// no such buffer.
int32_t runBuffer(const bitnet_model_info &info, int32_t index) {
  int32_t buffer = index >= 0 ? index : info.num_inputs + (-1 - index);
  bool valid = index >= 0 ? index < info.num_inputs
                          : buffer < info.num_inputs + info.num_outputs;
  return valid ? buffer : -1;
}

const bitnet_tensor_info &tensorOf(const bitnet_model_info &info,
                                   int32_t buffer) {
  return buffer < info.num_inputs ? info.inputs[buffer]
                                  : info.outputs[buffer - info.num_inputs];
}

std::string describe(const bitnet_model_info &info, int32_t buffer) {
  const bitnet_tensor_info &t = tensorOf(info, buffer);
  bool input = buffer < info.num_inputs;
  return std::string(input ? "input " : "output ") +
         std::to_string(input ? buffer : buffer - info.num_inputs) + " (" +
         (t.name ? t.name : "") + ")";
}

std::string stepWhere(size_t index, StepKind kind) {
  return "step " + std::to_string(index) + " (" + stepName(kind) + ")";
}

} // namespace

std::vector<std::string> checkCase(const Case &c,
                                   const bitnet_model_info &info) {
  std::vector<std::string> problems;
  bool hasState = false;
  for (int32_t i = 0; i < info.num_inputs; ++i)
    hasState |= (info.inputs[i].flags & BITNET_TENSOR_STATE) != 0;
  for (size_t si = 0; si < c.steps.size(); ++si) {
    const Step &step = c.steps[si];
    std::string where = stepWhere(si, step.kind);
    auto buffer = [&](const Buffer &b, bool stateAfterRun) {
      int32_t index = runBuffer(info, b.index);
      if (index < 0) {
        problems.push_back(where + ": the model has no buffer " +
                           std::to_string(b.index) + " (" +
                           std::to_string(info.num_inputs) + " inputs, " +
                           std::to_string(info.num_outputs) + " outputs)");
        return;
      }
      int64_t bytes = tensorBytes(tensorOf(info, index));
      // An expected value still to be recorded has no bytes yet.
      if (static_cast<int64_t>(b.bytes.size()) != bytes &&
          !(c.cpuReference && b.bytes.empty()))
        problems.push_back(where + ": " + describe(info, index) + " holds " +
                           std::to_string(bytes) + " bytes, the case gives " +
                           std::to_string(b.bytes.size()));
      if (stateAfterRun && index < info.num_inputs &&
          !(info.inputs[index].flags & BITNET_TENSOR_STATE))
        problems.push_back(where + ": " + describe(info, index) +
                           " is compared after the run but is no state input");
    };
    size_t wantInputs = 0, wantExpected = 0;
    switch (step.kind) {
    case StepKind::Run:
      wantInputs = static_cast<size_t>(info.num_inputs);
      wantExpected = step.expected.size();
      break;
    case StepKind::Upload:
      wantInputs = 1;
      break;
    case StepKind::Download:
      wantExpected = 1;
      break;
    case StepKind::ZeroState:
      if (!hasState)
        problems.push_back(where + ": the model has no state input");
      break;
    case StepKind::Launch:
      break;
    }
    if (step.inputs.size() != wantInputs ||
        step.expected.size() != wantExpected) {
      problems.push_back(where + ": gives " +
                         std::to_string(step.inputs.size()) + " inputs and " +
                         std::to_string(step.expected.size()) +
                         " expected values, the step takes " +
                         std::to_string(wantInputs) + " and " +
                         std::to_string(wantExpected));
      continue;
    }
    for (size_t i = 0; i < step.inputs.size(); ++i) {
      if (step.kind == StepKind::Run &&
          step.inputs[i].index != static_cast<int32_t>(i))
        problems.push_back(where + ": the inputs of a run come in order");
      buffer(step.inputs[i], false);
    }
    for (const Buffer &e : step.expected)
      buffer(e, step.kind == StepKind::Run);
  }
  return problems;
}

std::vector<std::string> runCase(Case &c, bitnet_context *context,
                                 bool record) {
  bitnet_model *model = bitnet_context_model(context);
  const bitnet_model_info &info = *bitnet_model_get_info(model);
  std::vector<std::string> failures = checkCase(c, info);
  if (!failures.empty())
    return failures;
  bool onDevice = bitnet_model_is_gpu(model) != 0;
  int32_t numInputs = info.num_inputs, numOutputs = info.num_outputs;
  // Host copies of every run buffer: what Run passes, and for a CPU model
  // the stand-ins of the device buffers.
  std::vector<std::vector<uint8_t>> host(numInputs + numOutputs);
  for (int32_t b = 0; b < numInputs + numOutputs; ++b)
    host[b].assign(static_cast<size_t>(tensorBytes(tensorOf(info, b))), 0);
  auto runOnHost = [&]() {
    std::vector<const void *> in(numInputs);
    std::vector<void *> out(numOutputs);
    for (int32_t i = 0; i < numInputs; ++i)
      in[i] = host[i].data();
    for (int32_t j = 0; j < numOutputs; ++j)
      out[j] = host[numInputs + j].data();
    return take(bitnet_context_run(context, in.data(), numInputs, out.data(),
                                   numOutputs));
  };

  for (size_t si = 0; si < c.steps.size(); ++si) {
    Step &step = c.steps[si];
    std::string where = stepWhere(si, step.kind);
    auto check = [&](Buffer &e) {
      int32_t buffer = runBuffer(info, e.index);
      if (record) {
        e.bytes = host[buffer];
        return;
      }
      std::string why = compare(e, host[buffer], tensorOf(info, buffer).dtype);
      if (!why.empty())
        failures.push_back(where + ": " + describe(info, buffer) + ": " + why);
    };
    std::string error;
    switch (step.kind) {
    case StepKind::Run:
      for (const Buffer &b : step.inputs)
        host[runBuffer(info, b.index)] = b.bytes;
      error = runOnHost();
      if (error.empty())
        for (Buffer &e : step.expected)
          check(e);
      break;
    case StepKind::Upload: {
      const Buffer &b = step.inputs[0];
      int32_t buffer = runBuffer(info, b.index);
      if (onDevice)
        error = take(bitnet_context_gpu_upload(context, buffer, b.bytes.data()));
      else
        host[buffer] = b.bytes;
      break;
    }
    case StepKind::ZeroState:
      for (int32_t i = 0; i < numInputs && error.empty(); ++i) {
        if (!(info.inputs[i].flags & BITNET_TENSOR_STATE))
          continue;
        std::fill(host[i].begin(), host[i].end(), 0);
        if (onDevice)
          error = take(bitnet_context_gpu_upload(context, i, host[i].data()));
      }
      break;
    case StepKind::Launch:
      error = onDevice ? take(bitnet_context_gpu_launch(context, 0, -1))
                       : runOnHost();
      break;
    case StepKind::Download: {
      int32_t buffer = runBuffer(info, step.expected[0].index);
      if (onDevice)
        error = take(bitnet_context_gpu_download(context, buffer,
                                                 host[buffer].data()));
      if (error.empty())
        check(step.expected[0]);
      break;
    }
    }
    if (!error.empty()) {
      // Later steps depend on this one.
      failures.push_back(where + ": " + error);
      return failures;
    }
  }
  return failures;
}

//===----------------------------------------------------------------------===//
// Case files
//===----------------------------------------------------------------------===//

namespace {
constexpr const char *kMagic = "bitnet-gpu-cases 1";

bool validName(const std::string &s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                  ch == '-' || ch == '.';
         });
}
} // namespace

std::string writeCases(const std::string &dir, const std::string &header,
                       const std::vector<Case> &cases,
                       const std::vector<std::string> &models) {
  if (models.size() != cases.size())
    return "one model per case is needed";
  std::ofstream txt(dir + "/cases.txt"), bin(dir + "/cases.bin",
                                            std::ios::binary);
  if (!txt || !bin)
    return "cannot write " + dir + "/cases.txt and cases.bin";
  // Every distinct byte string once: the cases share many inputs.
  std::map<std::vector<uint8_t>, int64_t> stored;
  int64_t size = 0;
  auto blob = [&](const std::vector<uint8_t> &bytes) {
    auto [it, added] = stored.try_emplace(bytes, size);
    if (added) {
      bin.write(reinterpret_cast<const char *>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      size += static_cast<int64_t>(bytes.size());
    }
    return std::to_string(it->second) + " " + std::to_string(bytes.size());
  };
  auto expected = [&](const Buffer &b) {
    return std::to_string(b.index) + " " + blob(b.bytes) + " " +
           compareName(b.compare) + " " + text(b.tolerance);
  };
  txt << kMagic << "\n"
      << "# Written by bitnet-gpu-prepare, read by bitnet-gpu-check. Buffers: "
         "input i, or output j as -1-j; data: offset and size in cases.bin.\n"
      << "target " << header << "\n";
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case &c = cases[ci];
    if (!validName(c.name) || !validName(models[ci]))
      return "bad case or model name '" + c.name + "', '" + models[ci] + "'";
    txt << "case " << c.name << " " << models[ci] << "\n";
    for (const Step &s : c.steps) {
      switch (s.kind) {
      case StepKind::Run:
        txt << "run\n";
        for (const Buffer &b : s.inputs)
          txt << "in " << b.index << " " << blob(b.bytes) << "\n";
        for (const Buffer &b : s.expected)
          txt << "expect " << expected(b) << "\n";
        break;
      case StepKind::Upload:
        txt << "upload " << s.inputs.at(0).index << " "
            << blob(s.inputs.at(0).bytes) << "\n";
        break;
      case StepKind::ZeroState:
        txt << "zero-state\n";
        break;
      case StepKind::Launch:
        txt << "launch\n";
        break;
      case StepKind::Download:
        txt << "download " << expected(s.expected.at(0)) << "\n";
        break;
      }
    }
  }
  txt.close();
  bin.close();
  if (!txt || !bin)
    return "writing " + dir + "/cases.txt or cases.bin failed";
  return "";
}

std::string readCases(const std::string &dir, std::string &header,
                      std::vector<Case> &cases,
                      std::vector<std::string> &models) {
  std::string txtPath = dir + "/cases.txt", binPath = dir + "/cases.bin";
  std::ifstream txt(txtPath);
  std::ifstream bin(binPath, std::ios::binary);
  if (!txt || !bin)
    return "cannot read " + txtPath + " and " + binPath +
           " (written by bench/gpu/prepare.sh)";
  std::vector<char> data((std::istreambuf_iterator<char>(bin)),
                         std::istreambuf_iterator<char>());
  std::string line;
  if (!std::getline(txt, line) || line != kMagic)
    return txtPath + ": not a case file of this version (first line '" +
           line + "', expected '" + kMagic + "')";
  int lineNo = 1;
  while (std::getline(txt, line)) {
    ++lineNo;
    std::istringstream in(line);
    std::string word;
    if (!(in >> word) || word[0] == '#')
      continue;
    std::string at = txtPath + ":" + std::to_string(lineNo) + ": ";
    auto bytes = [&](Buffer &b) {
      long long offset = -1, size = -1;
      if (!(in >> b.index >> offset >> size) || offset < 0 || size < 0 ||
          offset + size > static_cast<long long>(data.size()))
        return false;
      b.bytes.assign(data.begin() + offset, data.begin() + offset + size);
      return true;
    };
    auto comparison = [&](Buffer &b) {
      std::string how;
      if (!(in >> how >> b.tolerance))
        return false;
      for (Compare c : {Compare::Bits, Compare::Near, Compare::Logits})
        if (how == compareName(c)) {
          b.compare = c;
          return true;
        }
      return false;
    };
    if (word == "target") {
      std::getline(in >> std::ws, header);
      continue;
    }
    if (word == "case") {
      Case c;
      std::string model;
      if (!(in >> c.name >> model))
        return at + "expected 'case NAME MODEL'";
      cases.push_back(std::move(c));
      models.push_back(model);
      continue;
    }
    if (cases.empty())
      return at + "'" + word + "' before the first case";
    std::vector<Step> &steps = cases.back().steps;
    Step step;
    Buffer b;
    if (word == "run") {
      step.kind = StepKind::Run;
    } else if (word == "in" || word == "expect") {
      if (steps.empty() || steps.back().kind != StepKind::Run)
        return at + "'" + word + "' outside a run";
      if (!bytes(b) || (word == "expect" && !comparison(b)))
        return at + "bad buffer (index, offset, size" +
               (word == "expect" ? ", comparison, tolerance)" : ")");
      (word == "in" ? steps.back().inputs : steps.back().expected)
          .push_back(std::move(b));
      continue;
    } else if (word == "upload") {
      step.kind = StepKind::Upload;
      if (!bytes(b))
        return at + "bad buffer (index, offset, size)";
      step.inputs.push_back(std::move(b));
    } else if (word == "zero-state") {
      step.kind = StepKind::ZeroState;
    } else if (word == "launch") {
      step.kind = StepKind::Launch;
    } else if (word == "download") {
      step.kind = StepKind::Download;
      if (!bytes(b) || !comparison(b))
        return at + "bad buffer (index, offset, size, comparison, tolerance)";
      step.expected.push_back(std::move(b));
    } else {
      return at + "unknown word '" + word + "'";
    }
    steps.push_back(std::move(step));
  }
  if (cases.empty())
    return txtPath + " holds no case";
  return "";
}

} // namespace bitnet::gpu
