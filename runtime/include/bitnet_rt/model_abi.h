/*===- bitnet_rt/model_abi.h - Contract of a compiled model ---------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * What a shared object produced by `bitnet-compile --emit=so` exports, and what
 * the runtime (or any application that dlopen()s the object itself) may rely
 * on. Plain C, no dependency on the compiler.
 *
 * A compiled model exports these two symbols (and the run function of each
 * variant it carries, reached through the descriptor):
 *
 *   const bitnet_model_info bitnet_model_info;        (data)
 *   int32_t bitnet_model_run(void *const *buffers,    (function)
 *                            void *workspace,
 *                            bitnet_exec_ctx *ctx);
 *
 * `bitnet_model_info` describes the entry function: its inputs and outputs with
 * names, element types and static shapes. Read `magic` and `abi_version` first;
 * nothing else in the struct may be trusted unless both match this header.
 *
 * A model may carry other entries over the same weights (`bitnet-compile
 * --prefill-tokens=S` adds "prefill", a step of S tokens whose logits are the
 * last token's, beside the one-token step): `entries` lists them, each with a
 * descriptor of its own (its inputs, outputs and workspace; no metadata, no
 * variants, no entries) and a run function of the same contract. Entries
 * share the state inputs' names and shapes with the main entry where they
 * have the same ones, so that a caller can run them on the same buffers.
 *
 * `bitnet_model_run` runs the model once. `buffers` holds
 * `num_inputs + num_outputs` pointers: the inputs in declaration order, then the
 * outputs. Every buffer is a dense row-major array of its tensor's element type
 * and shape. Inputs are only read, except those flagged BITNET_TENSOR_STATE,
 * which are updated in place; outputs are fully written. Buffers must not
 * overlap. `workspace` points to at least `workspace_bytes` writable bytes
 * aligned to `workspace_alignment` (it may be NULL when `workspace_bytes` is 0):
 * every intermediate buffer of the run lives there, so a run allocates no
 * memory of its own and a caller that keeps the workspace between runs
 * allocates nothing in the steady state. One workspace serves one run at a
 * time; concurrent runs need one workspace each. `ctx` may be NULL, in which
 * case the model runs on the calling thread.
 * It returns 0 on success.
 *
 * A model compiled for a GPU (`bitnet-compile --target=nvptx`) sets
 * `bitnet_model_info.gpu`: its kernels are PTX (and, where ptxas was present
 * at compile time, a cubin) embedded in the object, and its run is a fixed
 * list of kernel launches over device buffers (bitnet_gpu_program below). The
 * loader, not the model, talks to the GPU: it loads the kernels with the CUDA
 * driver API, copies the weights to device memory once, and for each run
 * copies the inputs to the device, launches the list on one stream and copies
 * the outputs back. Such a model's `bitnet_model_run` does nothing and returns
 * BITNET_MODEL_RUN_NEEDS_GPU_LOADER, so that a host-only caller cannot mistake
 * it for a successful run. The object itself never links CUDA.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_MODEL_ABI_H
#define BITNET_RT_MODEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** "BTNM" read as a little-endian 32-bit integer. */
#define BITNET_MODEL_MAGIC 0x4d4e5442u
/** Bumped whenever a struct below or the run signature changes. */
#define BITNET_MODEL_ABI_VERSION 7u

/** A model file that bitnet-compile linked ends with a trailer of
 *  BITNET_MODEL_TRAILER_BYTES bytes: the 8 bytes of
 *  BITNET_MODEL_TRAILER_MAGIC, then two little-endian uint64: the number of
 *  bytes before the trailer (the whole ELF object) and their XXH64 checksum
 *  (seed 0). The loader ignores it; bitnet_model_verify() checks it. A
 *  checksum catches damage (a bad copy, a flipped bit), not malice: whoever
 *  can change the file can recompute it. */
#define BITNET_MODEL_TRAILER_MAGIC "BTNMSUM1"
#define BITNET_MODEL_TRAILER_BYTES 24

/** Names of the two exported symbols. */
#define BITNET_MODEL_INFO_SYMBOL "bitnet_model_info"
#define BITNET_MODEL_RUN_SYMBOL "bitnet_model_run"

/** What bitnet_model_run of a GPU model returns (see above). */
#define BITNET_MODEL_RUN_NEEDS_GPU_LOADER 3

/** Element types of model inputs and outputs. Values are part of the ABI. */
typedef enum bitnet_dtype {
  BITNET_DTYPE_INVALID = 0,
  BITNET_DTYPE_F32 = 1,
  BITNET_DTYPE_F16 = 2,
  BITNET_DTYPE_BF16 = 3,
  BITNET_DTYPE_F64 = 4,
  BITNET_DTYPE_I8 = 5,
  BITNET_DTYPE_I16 = 6,
  BITNET_DTYPE_I32 = 7,
  BITNET_DTYPE_I64 = 8,
  BITNET_DTYPE_U8 = 9,
  BITNET_DTYPE_BOOL = 10, /**< one byte per element, 0 or 1 */
  BITNET_DTYPE_U16 = 11,
  BITNET_DTYPE_U32 = 12,
  BITNET_DTYPE_U64 = 13,
} bitnet_dtype;

/**
 * Services the caller offers to the compiled kernels during one run. Every
 * field may be NULL / zero; kernels then fall back to running serially and
 * report nothing.
 */
typedef struct bitnet_exec_ctx {
  uint32_t abi_version; /**< BITNET_MODEL_ABI_VERSION */
  int32_t num_threads;  /**< threads parallel_for may use, >= 1 */
  void *user;           /**< passed back to every callback */
  /** Runs fn(arg, begin, end) over disjoint chunks covering [0, n), possibly
   *  in parallel, and returns when all chunks are done. */
  void (*parallel_for)(void *user, int64_t n,
                       void (*fn)(void *arg, int64_t begin, int64_t end),
                       void *arg);
  /** Called around every kernel when profiling is on. `bytes` is the data
   *  the kernel reads and writes, `flops` its arithmetic operations. */
  void (*kernel_begin)(void *user, const char *kernel, int64_t bytes,
                       int64_t flops);
  void (*kernel_end)(void *user, const char *kernel);
} bitnet_exec_ctx;

/** Signature of BITNET_MODEL_RUN_SYMBOL. */
typedef int32_t (*bitnet_model_run_fn)(void *const *buffers, void *workspace,
                                       bitnet_exec_ctx *ctx);

/** One input or output of the entry function. */
typedef struct bitnet_tensor_info {
  const char *name;     /**< argument name, NUL-terminated */
  int32_t dtype;        /**< a bitnet_dtype */
  int32_t rank;         /**< number of dimensions, 0 for a scalar */
  const int64_t *shape; /**< `rank` static extents, each >= 0 */
  int32_t flags;        /**< BITNET_TENSOR_* bits */
  /** With BITNET_TENSOR_RANGE: the values an integer input may hold,
   *  [min_value, max_value]. */
  int64_t min_value;
  int64_t max_value;
} bitnet_tensor_info;

/** bitnet_tensor_info.flags of an input that holds state the run updates in
 *  place (the KV cache of a decoder): the run reads it and writes its new
 *  value into the same buffer, so the caller keeps the buffer from one run to
 *  the next. Unlike other inputs it is written, and must not overlap any
 *  other buffer. */
#define BITNET_TENSOR_STATE 1

/** bitnet_tensor_info.flags of an integer input whose every element must lie
 *  in [min_value, max_value]: token ids (the rows of an embedding table) and
 *  KV-cache positions (0 to the cache's capacity less the step's tokens). The
 *  model's code would clamp a value outside, which runs but computes
 *  something else, so the runtime refuses such a run with
 *  BITNET_STATUS_OUT_OF_RANGE before it starts. */
#define BITNET_TENSOR_RANGE 2

/** The descriptor a compiled model exports under BITNET_MODEL_INFO_SYMBOL. */
typedef struct bitnet_model_info {
  uint32_t magic;       /**< BITNET_MODEL_MAGIC */
  uint32_t abi_version; /**< BITNET_MODEL_ABI_VERSION */
  const char *name;     /**< name of the entry function in the source IR */
  const char *producer; /**< e.g. "bitnet-compile 0.1.0" */
  const char *target;   /**< target triple and CPU the code was built for */
  int32_t num_inputs;
  int32_t num_outputs;
  const bitnet_tensor_info *inputs;  /**< num_inputs entries */
  const bitnet_tensor_info *outputs; /**< num_outputs entries */
  int64_t workspace_bytes;     /**< scratch memory one run needs */
  int64_t workspace_alignment; /**< required alignment of it, a power of 2 */
  /** Comma-separated CPU features the code uses, in the names of GCC's
   *  __builtin_cpu_supports on x86 (e.g. "avx2,avx512f,avx512vnni"), and
   *  "dotprod" (the dot product extension) on AArch64; NULL or "" when
   *  it needs nothing beyond the target's baseline. A loader must refuse a
   *  model that needs a feature the machine lacks. */
  const char *cpu_features;
  /** Builds of the same model for other CPUs, best first (num_variants
   *  entries; 0 and NULL when there are none). A loader runs the first
   *  variant whose cpu_features the machine has, and the baseline (the run
   *  symbol and the fields above) when none fits. */
  int32_t num_variants;
  const struct bitnet_model_variant *variants;
  /** The GPU program of a model compiled for a GPU; NULL for CPU models. */
  const struct bitnet_gpu_program *gpu;
  /** Metadata of the source model (ONNX metadata_props, e.g. the vocabulary
   *  "bitnet.vocab" as a JSON list of strings): 2 * num_metadata strings,
   *  key, value, key, value ...; NULL when there is none. */
  int32_t num_metadata;
  const char *const *metadata;
  /** Stack that the model's kernels put their buffers on (bytes, the largest
   *  any one thread needs, over every variant); the frames themselves come
   *  on top. A loader must run the model only on threads with at least this
   *  much stack left, and a margin. */
  int64_t stack_bytes;
  /** The model's other entries (num_entries of them; 0 and NULL when it has
   *  none), over the same weights. */
  int32_t num_entries;
  const struct bitnet_model_entry *entries;
} bitnet_model_info;

/** Another entry of the model: a step of another shape over the same
 *  weights. */
typedef struct bitnet_model_entry {
  const char *name;                     /**< e.g. "prefill" */
  const struct bitnet_model_info *info; /**< its inputs, outputs, workspace */
  bitnet_model_run_fn run;              /**< same contract as bitnet_model_run */
} bitnet_model_entry;

/** One build of the model for a CPU, with its own entry and workspace. */
typedef struct bitnet_model_variant {
  const char *name;         /**< the CPU it was built for, e.g. "znver4" */
  const char *cpu_features; /**< as bitnet_model_info.cpu_features */
  bitnet_model_run_fn run;  /**< same contract as bitnet_model_run */
  int64_t workspace_bytes;
  int64_t workspace_alignment;
} bitnet_model_variant;

/** Where a kernel argument points (bitnet_gpu_arg.kind). */
typedef enum bitnet_gpu_arg_kind {
  /** The device copy of run buffer `index` (inputs, then outputs, as in
   *  bitnet_model_run's `buffers`), plus `offset` bytes. */
  BITNET_GPU_ARG_BUFFER = 1,
  /** The device workspace, plus `offset` bytes. */
  BITNET_GPU_ARG_WORKSPACE = 2,
  /** The device copy of weight `index` of the program, plus `offset` bytes. */
  BITNET_GPU_ARG_WEIGHT = 3,
} bitnet_gpu_arg_kind;

/** One kernel parameter: always a device pointer (8 bytes). */
typedef struct bitnet_gpu_arg {
  int32_t kind;   /**< a bitnet_gpu_arg_kind */
  int32_t index;  /**< buffer or weight index; 0 for the workspace */
  int64_t offset; /**< bytes added to the base address */
} bitnet_gpu_arg;

/** One kernel launch of a run; launches run in order on one stream. */
typedef struct bitnet_gpu_launch {
  int32_t kernel;       /**< index into bitnet_gpu_program.kernel_names */
  uint32_t grid[3];     /**< blocks in x, y, z */
  uint32_t block[3];    /**< threads per block in x, y, z */
  uint32_t shared_bytes; /**< dynamic shared memory per block */
  int32_t num_args;
  const bitnet_gpu_arg *args; /**< num_args entries */
  int64_t bytes;        /**< memory the launch reads and writes (profiling) */
  int64_t flops;        /**< its arithmetic operations (profiling) */
} bitnet_gpu_launch;

/** A constant the kernels read (packed weights, scales, norms' gammas). */
typedef struct bitnet_gpu_weight {
  const void *data; /**< host copy in the object's read-only data */
  int64_t bytes;
} bitnet_gpu_weight;

/** Everything a loader needs to run a GPU model. */
typedef struct bitnet_gpu_program {
  const char *platform;  /**< "cuda" */
  const char *arch;      /**< the SM the code was built for, e.g. "sm_90" */
  const char *ptx;       /**< NUL-terminated PTX of every kernel */
  const void *cubin;     /**< ptxas output for `arch`, or NULL */
  int64_t cubin_bytes;
  int32_t num_kernels;
  const char *const *kernel_names; /**< entry names in the PTX/cubin */
  int32_t num_weights;
  const bitnet_gpu_weight *weights;
  int32_t num_launches;
  const bitnet_gpu_launch *launches;
  int64_t workspace_bytes; /**< device scratch memory one run needs */
} bitnet_gpu_program;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_MODEL_ABI_H */
