//===- Passes.td - Transformation passes of bitnet ---------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TRANSFORMS_PASSES_TD
#define BITNET_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def BitNetNarrowFloatWeights
    : Pass<"bitnet-narrow-float-weights", "::mlir::ModuleOp"> {
  let summary = "Stores the float weights of embeddings and dense layers in f16, bf16 or int8";
  let description = [{
    Every f32 constant used only as the table of `bitnet.embedding` or the
    weight of `bitnet.dense_matmul` (the embeddings and head of a decoder,
    often one tied constant) is converted at compile time:

    - `precision=f16`: rounded to f16 (to nearest even): half the bytes to
      store and to read per token;
    - `precision=bf16`: rounded to bf16 (to nearest even), also half the
      bytes, with f32's range; f16 constants stay f16 (bf16 would drop
      three of their bits);
    - `precision=int8`: each row quantised to int8 with its own scale
      (absmax / 127, round half to even), a quarter of the bytes; the ops get
      the scales as their `scales` operand. f16 constants (the embedding of
      a GGUF file or a checkpoint, stored so) are quantised the same way.

    - `precision=w8a8`: as int8, and every `bitnet.dense_matmul` with an
      int8 weight gets `quantize_input`: its input rows are quantised to
      int8 per token as the numerics contract quantises activations, and
      the products are int8 dot products.

    Kernels widen each weight to f32 (times its row's scale), or, with
    `quantize_input`, take int8 dot products.

    ```mlir
    %t = arith.constant dense<...> : tensor<128x64xf32>
    %x = bitnet.embedding %t, %ids : tensor<128x64xf32>, tensor<1xi32> -> tensor<1x64xf32>
    // becomes
    %t = arith.constant dense<...> : tensor<128x64xf16>
    %x = bitnet.embedding %t, %ids : tensor<128x64xf16>, tensor<1xi32> -> tensor<1x64xf32>
    ```
  }];
  let options = [
    Option<"precision", "precision", "::mlir::bitnet::FloatPrecision",
           /*default=*/"::mlir::bitnet::FloatPrecision::F16",
           "Precision to store the weights in", [{::mlir::bitnet::floatPrecisionValues()}]>,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def BitNetNarrowKVCache : Pass<"bitnet-narrow-kv-cache", "::mlir::ModuleOp"> {
  let summary = "Holds a decoder's KV caches in f16";
  let description = [{
    A KV cache that a function takes as an argument, hands to one
    `bitnet.attention` and returns updated (the state of a decoder step)
    becomes f16 in the function's signature: half the memory to hold and to
    read per token. The attention op rounds the new rows to f16 and widens the
    cached rows when it reads them. The caller allocates the caches from the
    model's descriptor (dtype f16) and zeroes them, as before.

    ```mlir
    func.func @step(..., %kc: tensor<64x2x8xf32>, ...) -> (..., tensor<64x2x8xf32>, ...)
    // becomes
    func.func @step(..., %kc: tensor<64x2x8xf16>, ...) -> (..., tensor<64x2x8xf16>, ...)
    ```
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def BitNetLastTokenLogits
    : Pass<"bitnet-last-token-logits", "::mlir::ModuleOp"> {
  let summary = "Computes a prefill step's logits for its last token only";
  let description = [{
    Generation needs the next-token distribution after the last prompt token
    only. Every result of the entry function that a `bitnet.dense_matmul`
    (the head) computes from `[S, K]` rows, S > 1, is computed from the last
    row alone and becomes `[1, N]`: the head, the largest layer of a decoder,
    runs once per step instead of S times.

    ```mlir
    %y = bitnet.dense_matmul %x, %w : tensor<16x64xf32>, tensor<100x64xf16> -> tensor<16x100xf32>
    return %y
    // becomes
    %last = tensor.extract_slice %x[15, 0] [1, 64] [1, 1] : tensor<16x64xf32> to tensor<1x64xf32>
    %y = bitnet.dense_matmul %last, %w : tensor<1x64xf32>, tensor<100x64xf16> -> tensor<1x100xf32>
    return %y
    ```
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"\"",
           "Entry function (default: the only public function)">,
  ];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def BitNetPackWeights : Pass<"bitnet-pack-weights", "::mlir::ModuleOp"> {
  let summary = "Re-encodes the ternary weights of linear layers in one format";
  let description = [{
    Every `bitnet.bitlinear` and `bitnet.ternary_matmul` whose weight is stored
    in another format gets its weight converted to `format` (through
    `bitnet.unpack` and `bitnet.pack`), and the conversion is folded, so that
    constant weights are re-encoded at compile time and the compiled artifact
    holds only the packed bytes.

    Before (`format=i2`):

    ```mlir
    %w = bitnet.constant dense<...> : tensor<4x8xi8> -> !bitnet.ternary<4x8, int8>
    %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, int8>, tensor<f32> -> tensor<2x4xf32>
    ```

    After:

    ```mlir
    %w = bitnet.constant dense<...> : tensor<4x2xi8> -> !bitnet.ternary<4x8, i2>
    %y = bitnet.bitlinear %x, %w scale %s : tensor<2x8xf32>, !bitnet.ternary<4x8, i2>, tensor<f32> -> tensor<2x4xf32>
    ```
  }];
  let options = [
    Option<"format", "format", "::mlir::bitnet::TernaryFormat",
           /*default=*/"::mlir::bitnet::TernaryFormat::I2",
           "Target format", [{::mlir::bitnet::ternaryFormatValues()}]>,
  ];
}

def BitNetPlanWorkspace : Pass<"bitnet-plan-workspace", "::mlir::ModuleOp"> {
  let summary = "Places every intermediate buffer of the entry function in one workspace";
  let description = [{
    Runs on bufferized IR. Every statically sized `memref.alloc` in the entry
    block of the entry function becomes a `memref.view` into one `i8` buffer,
    the workspace, which is appended to the function's arguments (marked
    `bitnet.workspace`). Offsets are assigned by lifetime (from the alloc to
    its `memref.dealloc`, or to the end of the function), first fit, so buffers
    that are never live together share bytes. The deallocations are removed and
    the size is recorded in the function attribute `bitnet.workspace_bytes`.
    A run of the compiled model then allocates nothing of its own.

    Before:

    ```mlir
    %a = memref.alloc() {alignment = 64 : i64} : memref<2x8xf32>
    ...
    memref.dealloc %a : memref<2x8xf32>
    ```

    After:

    ```mlir
    %a = memref.view %ws[%c0][] : memref<64xi8> to memref<2x8xf32>
    ```
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"\"",
           "Entry function (default: the only public function)">,
    Option<"alignment", "alignment", "int64_t", /*default=*/"64",
           "Alignment of every buffer in the workspace, a power of 2">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect"];
}

def BitNetEmitEntryPoint : Pass<"bitnet-emit-entry-point", "::mlir::ModuleOp"> {
  let summary = "Adds the stable C entry point and the model descriptor";
  let description = [{
    Runs on bufferized IR whose entry function takes its inputs, then its
    outputs as out-parameters (marked `bufferize.result`), then optionally the
    workspace (marked `bitnet.workspace`). Adds what `bitnet_rt/model_abi.h`
    specifies: the constant `bitnet_model_info` (names, element types and
    shapes of inputs and outputs, workspace size, producer and target) and the
    function `bitnet_model_run(void *const *buffers, void *workspace,
    bitnet_exec_ctx *ctx)`, which wraps each buffer in a memref descriptor and
    calls the entry function. The entry function becomes private.

    Names come from the argument attribute `bitnet.name` and the function
    attribute `bitnet.output_names`; they default to `input<i>`/`output<i>`.

    The descriptor's target and the CPU features a loader checks come from
    the module's `bitnet.target` attribute (`#bitnet.target`); without one
    they are empty.

    A model may carry builds for several CPUs: each variant build is compiled
    with its own `run-symbol` and `emit-info=false`, and the baseline module's
    `bitnet.variants` attribute (`#bitnet.variant`s, best first) lists them
    for the descriptor, which the loader uses to pick the best build the
    machine runs.

    A model may also carry other entries over the same weights (a step of S
    tokens beside the one-token step): each is compiled with its own
    `run-symbol` and `info-symbol`, and the main module's `bitnet.entries`
    attribute (an array of dictionaries `{name = "prefill", info =
    @bitnet_model_info__prefill, run = @bitnet_model_run__prefill,
    stack_bytes = N}`) lists them for the main descriptor.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"\"",
           "Entry function (default: the only public function)">,
    Option<"producer", "producer", "std::string",
           /*default=*/"\"bitnet-compile\"", "Producer string of the descriptor">,
    Option<"runSymbol", "run-symbol", "std::string",
           /*default=*/"\"bitnet_model_run\"",
           "Name of the run function (another name for a variant build)">,
    Option<"emitInfo", "emit-info", "bool", /*default=*/"true",
           "Emit the bitnet_model_info descriptor (not in variant builds)">,
    Option<"infoSymbol", "info-symbol", "std::string",
           /*default=*/"\"bitnet_model_info\"",
           "Name of the descriptor (another name for a model's other "
           "entries, whose descriptors carry no metadata)">,
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::func::FuncDialect"];
}

def BitNetLowerMemRefCopies
    : Pass<"bitnet-lower-memref-copies", "::mlir::func::FuncOp"> {
  let summary = "Turns memref.copy into linalg.copy, so copies become loops";
  let description = [{
    `memref.copy` between buffers that are not both contiguous lowers to a
    call of `memrefCopy`, a helper of MLIR's C runner utilities that a
    compiled model must not depend on. Rewriting every copy as `linalg.copy`
    lets `convert-linalg-to-loops` emit plain loads and stores instead.

    ```mlir
    memref.copy %sub, %out : memref<2x2x16xf32, strided<[64, 16, 1], offset: 16>> to memref<2x2x16xf32>
    // becomes
    linalg.copy ins(%sub : memref<2x2x16xf32, strided<[64, 16, 1], offset: 16>>) outs(%out : memref<2x2x16xf32>)
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def BitNetEmitGPUProgram : Pass<"bitnet-emit-gpu-program", "::mlir::ModuleOp"> {
  let summary = "Embeds the compiled kernels and the launch list of a GPU model";
  let description = [{
    Runs after `gpu-module-to-binary{format=isa}` on the output of
    `bitnet-lower-to-gpu`. Reads the PTX of `gpu.binary @bitnet_kernels` and
    every `gpu.launch_func` of the host function (the one with a
    `bitnet.gpu_workspace` argument), tracing each kernel operand back to a
    run buffer, the device workspace or a constant global, and emits the
    `bitnet_gpu_program` of `model_abi.h` as the LLVM global
    `__bitnet_gpu_program`: PTX, a cubin when `ptxas=` names ptxas (a
    rejection prints the command that reproduces it), kernel names, weights,
    launches. The host function is left with its inputs and outputs and an
    empty body; `bitnet-emit-entry-point` then points the descriptor at the
    program. Modules without a GPU host function are left alone.
  }];
  let options = [
    Option<"ptxas", "ptxas", "std::string", /*default=*/"\"\"",
           "ptxas to assemble the PTX into a cubin with (empty: PTX only)">,
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def BitNetStateArguments
    : Pass<"bitnet-state-arguments", "::mlir::func::FuncOp"> {
  let summary = "Turns results updated in place into state arguments";
  let description = [{
    Runs after one-shot bufferization. A result that bufferized to the very
    buffer of an argument (a KV cache written in place by
    `bitnet.attention`) is not copied into an output of its own: the result is
    dropped and the argument is marked `bitnet.state`, which the model
    descriptor reports (BITNET_TENSOR_STATE), so that the caller keeps the
    buffer between runs and the run updates it. The matching name is removed
    from `bitnet.output_names`.

    ```mlir
    func.func @step(%t: memref<1xi32>, %kc: memref<64x2x8xf32>) -> (memref<1x4xf32>, memref<64x2x8xf32>)
      ...
      return %logits, %kc : memref<1x4xf32>, memref<64x2x8xf32>
    // becomes
    func.func @step(%t: memref<1xi32>, %kc: memref<64x2x8xf32> {bitnet.state}) -> memref<1x4xf32>
      ...
      return %logits : memref<1x4xf32>
    ```
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def BitNetInputRanges : Pass<"bitnet-input-ranges", "::mlir::func::FuncOp"> {
  let summary = "Records the values an integer argument may hold";
  let description = [{
    An argument that feeds the token ids of a `bitnet.embedding` (directly or
    through reshapes) may hold `[-V, V - 1]` for a table of V rows; one that
    feeds the position of a `bitnet.attention` may hold `[0, C - S]` for a
    cache of capacity C and S new tokens. Both ops clamp a value outside,
    which keeps memory safe but computes something else, so the range is
    recorded as `bitnet.range = array<i64: min, max>` on the argument (the
    intersection when several uses constrain it). The model descriptor
    reports it (BITNET_TENSOR_RANGE) and the runtime refuses a run whose
    inputs fall outside.

    ```mlir
    func.func @step(%tokens: tensor<1xi32>, %pos: tensor<i32>, ...)
    // becomes
    func.func @step(%tokens: tensor<1xi32> {bitnet.range = array<i64: -97, 96>},
                    %pos: tensor<i32> {bitnet.range = array<i64: 0, 255>}, ...)
    ```
  }];
}

def BitNetDistinctResults
    : Pass<"bitnet-distinct-results", "::mlir::func::FuncOp"> {
  let summary = "Gives a tensor returned more than once a copy per extra use";
  let description = [{
    Every output of a compiled model is written into a buffer of its own, so
    a function that returns the same tensor twice needs a copy of it for each
    repetition (upstream `buffer-results-to-out-params` does not handle the
    repetition). The copy is a `linalg.copy` into a fresh `tensor.empty`.

    ```mlir
    return %y, %y : tensor<4xf32>, tensor<4xf32>
    // becomes
    %e = tensor.empty() : tensor<4xf32>
    %c = linalg.copy ins(%y : tensor<4xf32>) outs(%e : tensor<4xf32>) -> tensor<4xf32>
    return %y, %c : tensor<4xf32>, tensor<4xf32>
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // BITNET_TRANSFORMS_PASSES_TD
