//===- EnumOptions.h - Command-line values of the dialect's enums -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The values, as options spell them, of the enums that pass options,
// pipeline options and bitnet-compile take: one list per enum, so that a new
// case is added once, e.g.
//
//   Option<TernaryFormat> format{..., ternaryFormatValues()};
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_ENUMOPTIONS_H
#define BITNET_DIALECT_BITNET_IR_ENUMOPTIONS_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "llvm/Support/CommandLine.h"

namespace mlir::bitnet {

inline llvm::cl::ValuesClass ternaryFormatValues() {
  return llvm::cl::values(
      clEnumValN(TernaryFormat::Int8, "int8", "one byte a weight"),
      clEnumValN(TernaryFormat::I2, "i2", "2 bits a weight"),
      clEnumValN(TernaryFormat::Base3, "base3",
                 "five weights a byte (1.6 bits)"));
}

inline llvm::cl::ValuesClass floatPrecisionValues() {
  return llvm::cl::values(
      clEnumValN(FloatPrecision::F32, "f32", "as the model stores them"),
      clEnumValN(FloatPrecision::F16, "f16",
                 "half the bytes, rounded at compile time"),
      clEnumValN(FloatPrecision::BF16, "bf16",
                 "half the bytes, f32's range, 8 significant bits (a bf16 "
                 "checkpoint's weights exactly)"),
      clEnumValN(FloatPrecision::Int8, "int8",
                 "a quarter of the bytes, one scale per row"),
      clEnumValN(FloatPrecision::W8A8, "w8a8",
                 "int8 as above, and dense layers (a decoder's head) "
                 "quantise their input to int8 per token: int8 dot "
                 "products, the activations rounded"));
}

inline llvm::cl::ValuesClass kvCacheTypeValues() {
  return llvm::cl::values(
      clEnumValN(KVCacheType::F16, "f16", "half the memory, new rows rounded"),
      clEnumValN(KVCacheType::F32, "f32", "single precision"));
}

inline llvm::cl::ValuesClass kernelISAValues() {
  return llvm::cl::values(
      clEnumValN(KernelISA::AVX512VNNI, "avx512vnni", "x86 AVX-512 VNNI"),
      clEnumValN(KernelISA::AVXVNNI, "avxvnni", "x86 AVX-VNNI"),
      clEnumValN(KernelISA::AVX2, "avx2", "x86 AVX2"),
      clEnumValN(KernelISA::NEON, "neon",
                 "AArch64 with the dot product extension"),
      clEnumValN(KernelISA::None, "none",
                 "no kernels: the reference lowering"));
}

inline llvm::cl::ValuesClass kernelFamilyValues() {
  return llvm::cl::values(
      clEnumValN(KernelFamily::MAD, "mad", "multiply-add on int8 dot products"),
      clEnumValN(KernelFamily::LUT, "lut", "table lookups"),
      clEnumValN(KernelFamily::Auto, "auto",
                 "a cost model chooses per layer"));
}

} // namespace mlir::bitnet

#endif // BITNET_DIALECT_BITNET_IR_ENUMOPTIONS_H
