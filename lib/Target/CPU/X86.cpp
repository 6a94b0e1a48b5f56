//===- X86.cpp - The CPU target on x86-64 ------------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/Architecture.h"

#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::bitnet;

namespace {
// LLVM and GCC share these names.
constexpr llvm::StringLiteral kCheckable[] = {
    "sse4.1",      "sse4.2",     "avx",        "avx2",       "fma",
    "f16c",        "bmi",        "bmi2",       "avx512f",    "avx512bw",
    "avx512vl",    "avx512dq",   "avx512cd",   "avx512vnni", "avx512vbmi",
    "avx512vbmi2", "avx512bf16", "avx512fp16", "avxvnni",    "amx-tile",
    "amx-int8",    "amx-bf16"};

constexpr llvm::StringLiteral kLUTNeeds[] = {"avx512f", "avx512bw",
                                             "avx512vnni", "avx512vbmi"};
constexpr llvm::StringLiteral kAVX512VNNINeeds[] = {"avx512f", "avx512bw",
                                                    "avx512vnni"};
constexpr llvm::StringLiteral kAVXVNNINeeds[] = {"avx2", "avxvnni"};
constexpr llvm::StringLiteral kAVX2Needs[] = {"avx2"};

const CPUKernelChoice kKernels[] = {
    {"avx512-lut",
     {KernelISA::AVX512VNNI, KernelFamily::LUT},
     kLUTNeeds,
     KernelFamily::Auto},
    {"avx512vnni",
     {KernelISA::AVX512VNNI, KernelFamily::MAD},
     kAVX512VNNINeeds,
     KernelFamily::MAD},
    {"avxvnni",
     {KernelISA::AVXVNNI, KernelFamily::MAD},
     kAVXVNNINeeds,
     KernelFamily::MAD},
    {"avx2", {KernelISA::AVX2, KernelFamily::MAD}, kAVX2Needs,
     KernelFamily::MAD},
};
} // namespace

const CPUArchitecture &mlir::bitnet::getX86Architecture() {
  static const CPUArchitecture arch{
      "x86", [](const llvm::Triple &t) { return t.isX86(); }, kCheckable,
      kKernels};
  return arch;
}
