//===- GPUCases.h - The GPU execution cases ---------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Every model the GPU execution tests run, with its inputs and the values the
// scalar reference gives for them (or, for the bundled decoder, its CPU
// build). Run in process by GPUTest.cpp, and written out with compiled models
// by bitnet-gpu-prepare for bitnet-gpu-check on a machine without the
// compiler.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TEST_UNIT_GPUCASES_H
#define BITNET_TEST_UNIT_GPUCASES_H

#include "GPUCase.h"

#include <optional>
#include <string>
#include <vector>

namespace bitnet::test {

/// The names of the GPU cases, cheap (GoogleTest lists them at start-up).
std::vector<std::string> gpuCaseNames();

/// The case `name` with its inputs and expected values (none for an unknown
/// name); the reference is computed here, so this takes a moment for the
/// large ones.
std::optional<bitnet::gpu::Case> gpuCase(const std::string &name);

} // namespace bitnet::test

#endif // BITNET_TEST_UNIT_GPUCASES_H
