//===- Tune.h - Timing kernel candidates on this machine -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// `bitnet-compile --tune`: for every distinct shape of the model's layers,
// compiles a layer of that shape (random weights) with each candidate,
// runs it through libbitnet_rt on this machine, and passes what measured
// clearly faster than the compiler's default to the compiler
// (CompileOptions::tunedKernels), which records the times in the
// `bitnet.kernel` attribute:
//  * bitlinear layers: the kernel family (MAD or LUT), then the prefetch
//    distance of the family the shape takes;
//  * dense layers (a decoder's head): the kernel's block shape (rows,
//    vectors a row a step, bytes prefetched ahead).
// Results are kept in a cache file keyed by the CPU's identity, the shape,
// where the weights stay and the thread count, so that later compiles on
// the same machine reuse them.
//===----------------------------------------------------------------------===//

#ifndef BITNET_COMPILE_TUNE_H
#define BITNET_COMPILE_TUNE_H

#include "bitnet/Compiler/CompileOptions.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir::bitnet {

struct TuneSettings {
  /// The cache file; read first, written back with the new measurements.
  std::string cachePath;
  /// Threads the layers run on (the runtime's default: online cores).
  int threads = 1;
  /// Weights larger than this stream from memory at every call: the
  /// candidates then run with their weights flushed from the caches.
  int64_t cacheBytes = int64_t(32) << 20;
  /// Measure again even where the cache has the shape.
  bool refresh = false;
  /// Print each shape's times.
  bool verbose = false;
  /// Print nothing (but errors).
  bool quiet = false;
};

/// The cache file used when none is given: $XDG_CACHE_HOME/bitnet-mlir/
/// tuning.json, else ~/.cache/bitnet-mlir/tuning.json.
std::string defaultTuningCachePath();

/// Times the kernel candidates for `module`'s layer shapes and fills
/// `options.tunedKernels`. Does nothing (with a note) where the target offers
/// no choice; an error where the target is not this machine.
llvm::Error tuneKernels(ModuleOp module, CompileOptions &options,
                        const TuneSettings &settings);

} // namespace mlir::bitnet

#endif // BITNET_COMPILE_TUNE_H
