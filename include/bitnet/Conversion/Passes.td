//===- Passes.td - Conversion passes of bitnet -------------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_PASSES_TD
#define BITNET_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def BitNetLowerToLinalg : Pass<"bitnet-lower-to-linalg", "::mlir::ModuleOp"> {
  let summary = "Lowers every bitnet op to linalg/arith/math/tensor (reference path)";
  let description = [{
    The reference lowering: each bitnet op becomes `linalg.generic` ops on
    tensors that compute the dialect's numerics contract literally (round half
    to even, clamps, int32 accumulation, double-precision absmean). It is
    written to be obviously right rather than fast, and is the oracle the
    optimised kernels are checked against. `!bitnet.ternary` values become
    their storage tensors, also across function signatures.

    Before:

    ```mlir
    %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
    ```

    After (abridged):

    ```mlir
    %amax = linalg.generic ... ins(%x : tensor<2x8xf32>) outs(... : tensor<2xf32>)  // max |x| per token
    %q = linalg.generic ... -> tensor<2x8xi8>          // clamp(roundeven(x * 127 / amax))
    %wq = linalg.generic ... -> tensor<4x8xi8>         // unpack 2-bit codes
    %acc = linalg.generic ... -> tensor<2x4xi32>       // sum_k extsi(q) * extsi(wq)
    %y = linalg.generic ... -> tensor<2x4xf32>         // acc * s_w / s_x
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def BitNetLowerToCPUKernels
    : Pass<"bitnet-lower-to-cpu-kernels", "::mlir::ModuleOp"> {
  let summary = "Lowers bitlinear layers with constant weights to CPU kernels";
  let description = [{
    Replaces every `bitnet.bitlinear` whose weight is a constant and whose
    shapes are static by a call to a kernel generated for its shape and the
    instruction set `isa`:

    * `avx512vnni`: the MAD kernel. The weight is laid out at compile time as
      2-bit codes `w + 1` in groups of 64 rows x 16 columns, so that one
      64-byte load and one AND give the unsigned operand of `vpdpbusd` for
      16 rows; each token is quantised once (fused into the kernel) and its
      sum corrects the unsigned codes; row groups are spread over the
      runtime's thread pool (`bitnet_exec_ctx.parallel_for`). From 12
      tokens on (prefill, K up to 8192), the codes of 32 rows are unpacked
      once per call into a stack buffer that passes of 12 tokens read. K
      past 524288 columns keeps the reference lowering (with a warning).
    * `avxvnni`: the same on 256-bit vectors (VEX-encoded `vpdpbusd`,
      groups of 32 rows), for CPUs with AVX-VNNI and no AVX-512.
    * `avx2`: the same layout on 256-bit vectors with `vpmaddubsw` and
      `vpmaddwd` in place of `vpdpbusd`.
    * `neon`: the same on AArch64's 128-bit vectors with `sdot` (the dot
      product extension, `+dotprod`): groups of 16 rows, 64 bytes per 16
      columns. `sdot` multiplies signed bytes, so the top code of each byte
      is shifted down rather than masked in place.
    * `none`: nothing is lowered; the reference lowering handles everything.

    With `isa=avx512vnni`, `family` picks between the MAD kernel and the LUT
    kernel, which needs AVX-512 VBMI too: three weights are stored in 5 bits
    (an index into a table of partial sums and a sign, 1.67 bits a weight),
    each token's tables are written once, and two `vpermb` look the partial
    sums up for 16 rows x 12 columns at a time. `family=auto` asks a cost
    model, per layer: compute cycles of each kernel against the cycles the
    weight bytes take to arrive from where the module's ternary weights stay
    between calls (within `l2-bytes`: the core's L2; within `cache-bytes`:
    the last-level cache; else memory). The LUT kernel reads 17% fewer
    bytes; the MAD kernel computes faster, and much faster for several
    tokens.

    `tuned` replaces the cost model with measurements: an entry
    `MxNxK:family:mad_ns:lut_ns` (what `bitnet-compile --tune` timed on the
    machine for M tokens times an N x K weight) makes every such layer take
    `family`.

    Other bitlinear ops are left to `bitnet-lower-to-linalg`. The choice is
    recorded on the call as the `bitnet.kernel` attribute, with the cost
    model's estimates or the measured times when it chose.

    Before:

    ```mlir
    %y = bitnet.bitlinear %x, %w scale %s : tensor<1x2560xf32>, !bitnet.ternary<6912x2560, i2>, tensor<f32> -> tensor<1x6912xf32>
    ```

    After (abridged):

    ```mlir
    %packed = arith.constant dense<...> : tensor<4423680xi8>
    call @__bitnet_mad_vnni_1x6912x2560_memref(%xb, %wb, %sb, %yb, %scratch)
        {bitnet.kernel = {family = "mad", isa = "avx512vnni", ...}} : (...) -> ()
    %y = bufferization.to_tensor %yb restrict writable : ...
    ```
  }];
  let options = [
    Option<"isa", "isa", "::mlir::bitnet::KernelISA",
           /*default=*/"::mlir::bitnet::KernelISA::AVX512VNNI",
           "Instruction set of the kernels", [{::mlir::bitnet::kernelISAValues()}]>,
    Option<"family", "family", "::mlir::bitnet::KernelFamily",
           /*default=*/"::mlir::bitnet::KernelFamily::MAD",
           "Kernel family of bitlinear layers (lut and auto need "
           "isa=avx512vnni and AVX-512 VBMI)", [{::mlir::bitnet::kernelFamilyValues()}]>,
    Option<"l2Bytes", "l2-bytes", "int64_t", /*default=*/"2 << 20",
           "A core's L2 cache: models with fewer ternary weight bytes keep "
           "them there between calls (family=auto)">,
    Option<"cacheBytes", "cache-bytes", "int64_t", /*default=*/"32 << 20",
           "The last-level cache: larger models stream their weights from "
           "memory (family=auto)">,
    // -1: defaultPrefetchDistance(target chip, family), measured per CPU.
    Option<"prefetchDistance", "prefetch-distance", "int64_t",
           /*default=*/"-1",
           "Bytes ahead of the weight stream to prefetch (0: none; -1: the "
           "target's default, none for the MAD kernels on an AMD Zen 4 and "
           "4096 otherwise)">,
    Option<"layoutTokens", "layout-tokens", "int64_t", /*default=*/"0",
           "With family=auto, choose each layer's family as for a step of "
           "this many tokens where that is more than the layer's own (as for "
           "one token where both families have a loop for a step that "
           "large, which then runs alike on either layout): the builds of "
           "one model for several step sizes then lay its weights out "
           "alike, and the shared object keeps one copy of them">,
    ListOption<"tuned", "tuned", "std::string",
               "Kernels measured on the machine (bitnet-compile --tune): "
               "MxNxK:family:mad_ns:lut_ns[:prefetch] for a bitlinear shape "
               "(with family=auto it takes the measured family, and prefetch "
               "distance where given, instead of the cost model's), and "
               "dense:MxNxK:rows:vectors:prefetch:ns:default_ns for a "
               "dense_matmul shape (the block shape its kernel takes)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::func::FuncDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def BitNetLowerToGPU : Pass<"bitnet-lower-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lowers a model's entry function to NVIDIA GPU kernels and launches";
  let description = [{
    Turns the entry function, on tensors, into a host function on memrefs
    whose body is a fixed list of `gpu.launch_func` ops, and adds the
    kernels, specialised for every shape, to `gpu.module @bitnet_kernels`
    (gpu, arith, math, vector and NVVM ops: `nvvm.dot.accumulate.4way` is
    dp4a). Every value gets its own device buffer: inputs and outputs are the
    function's arguments (outputs as out-parameters marked
    `bufferize.result`), constants become `memref.global`s (weights in the
    GPU layout, see `GPUKernels.h`), intermediates are views of one device
    workspace argument marked `bitnet.gpu_workspace`; reshapes alias.

    Lowered ops: `bitnet.bitlinear` with a constant weight (a quantisation
    kernel, shared by the layers that read the same input, then the W2A8
    GEMV for up to 8 tokens or a GEMM of 8-token blocks; the weight rows
    per warp are chosen per shape, or all set by `gemv-rows`),
    `bitnet.quantize_activations`, `bitnet.rmsnorm` (read by bitlinear
    layers alone, one kernel with their quantisation, which also computes a
    gated FFN's relu(gate)^2 * up when that is its input; a residual add of
    a bitlinear output is the GEMV's last step),
    `bitnet.squared_relu`, `bitnet.rope` (one thread per rotated pair),
    `bitnet.attention` (a kernel that writes the new key and value rows into
    the caches, and also does the ropes of the query and key when they are
    read by the attention alone, then one block per token and query head
    over the visible cache rows), `bitnet.embedding` and `bitnet.dense_matmul` (f32, f16 or
    i8 with row scales; a warp per weight row), `arith.addf`/`arith.mulf` on
    f32 tensors of one shape and the elementwise `linalg.generic` forms of
    them, the positions of a step (`tensor.generate` of start + index),
    `tensor.expand_shape`/`collapse_shape`, and whole rows sliced out of an
    intermediate (`tensor.extract_slice`, a view). A decoder step imported
    from ONNX thus runs whole on the GPU. Anything else is an error that
    names the op.

    The KV caches of `bitnet.attention` must be arguments of the entry
    function that nothing else reads: they stay in device memory and are
    updated in place, so each becomes a state argument (`bitnet.state`,
    BITNET_TENSOR_STATE in the descriptor) and an updated cache that the
    function returns is dropped from the outputs, as `bitnet-state-arguments`
    does on the CPU path.

    Before:

    ```mlir
    func.func @f(%x: tensor<1x2560xf32>) -> tensor<1x6912xf32> {
      %y = bitnet.bitlinear %x, %w scale %s : ... -> tensor<1x6912xf32>
      return %y : tensor<1x6912xf32>
    }
    ```

    After (abridged):

    ```mlir
    func.func @f(%x: memref<2560xf32>, %y: memref<6912xf32> {bufferize.result},
                 %ws: memref<...xi8> {bitnet.gpu_workspace}) {
      gpu.launch_func @bitnet_kernels::@bitnet_quantize_1x2560_1x2560 ...
      gpu.launch_func @bitnet_kernels::@bitnet_gemv_w2a8_1x6912x2560_r4 ...
      return
    }
    gpu.module @bitnet_kernels { gpu.func @bitnet_gemv_w2a8_... kernel { ... } }
    ```
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"\"",
           "Entry function (default: the only public function)">,
    Option<"gemvRows", "gemv-rows", "int64_t", /*default=*/"0",
           "Weight rows per warp of every W2A8 kernel: 1, 2, 4, 8, 16 or 32 "
           "(default 0: chosen per shape by chooseGemvLayout)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::func::FuncDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def BitNetGPUEmulation : Pass<"bitnet-gpu-emulation", "::mlir::ModuleOp"> {
  let summary = "Adds a host build of every GPU kernel, for the CUDA driver emulator";
  let description = [{
    For every kernel `gpu.func @NAME` of a `gpu.module`, adds a host function
    `@NAME__bitnet_emu(%args, %ops, %thread)` that runs one thread of it and
    an `@NAME__bitnet_emu_info` global (parameters, workgroup arrays, the
    block size the kernel was built for, the workgroup arrays' bytes), with
    the ABI of `runtime/include/bitnet_rt/gpu_emulation.h`. The CUDA driver
    emulator of libbitnet_rt's tests runs them, one fiber per thread, when a
    GPU model built with `bitnet-compile --gpu-emulation` is loaded without
    a GPU.

    The kernel body is cloned unchanged except for what needs the GPU:
    thread, block and grid ids and sizes are loads from `%thread`;
    `gpu.barrier` and `gpu.shuffle` (i32, f32) are calls through `%ops`;
    `nvvm.dot.accumulate.4way` is widened, multiplied and reduced with
    arith and vector ops; memrefs lose their GPU address space. Every
    `memref.load`/`store` and `vector.load`/`store` is guarded: an index
    outside its dimension calls the emulator's `fault` with the op, the
    memref type, the kernel and the location instead of accessing memory.
    Kernels keep their `gpu.module`, which the NVVM path compiles as before.
    Anything else of the gpu or NVVM dialects is an error that names the op.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

#endif // BITNET_CONVERSION_PASSES_TD
