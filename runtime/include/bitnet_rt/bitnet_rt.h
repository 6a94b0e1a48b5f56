/*===- bitnet_rt/bitnet_rt.h - Runtime C API ------------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * The C API of libbitnet_rt: load a model compiled by `bitnet-compile
 * --emit=so`, look at its inputs and outputs, and run it.
 *
 *   bitnet_model *model;      bitnet_model_load(path, &model)
 *   bitnet_thread_pool *tp;   bitnet_thread_pool_create(n, &tp)      optional
 *   bitnet_pool *pool;        bitnet_pool_create(&pool)              optional
 *   bitnet_context *ctx;      bitnet_context_create(model, &opts, &ctx)
 *                             bitnet_context_run(ctx, inputs, ni, outputs, no)
 *
 * Every fallible call returns a `bitnet_status`: NULL means success, anything
 * else is an error object with a code and a readable message that the caller
 * frees with bitnet_status_free(). No call crashes on a NULL argument.
 *
 * Models, memory pools and thread pools are reference counted: a context keeps
 * what it uses alive, so they may be released in any order. A context serves
 * one run at a time; concurrent runs use one context each (they may share the
 * model, the memory pool and the thread pool).
 *
 * The runtime depends on libc, libdl and pthreads, and its tokenizer
 * (bitnet_rt/tokenizer.h) on cJSON and PCRE2.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_BITNET_RT_H
#define BITNET_RT_BITNET_RT_H

#include <stdint.h>
#include <stdio.h>

#include "bitnet_rt/model_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BITNET_RT_API __attribute__((visibility("default")))
#else
#define BITNET_RT_API
#endif

/** Largest tensor rank the runtime accepts in a model descriptor. */
#define BITNET_MAX_RANK 8

/** Version of this runtime, e.g. "0.1.0". */
BITNET_RT_API const char *bitnet_rt_version(void);

/*===----------------------------------------------------------------------===*
 * Status
 *===----------------------------------------------------------------------===*/

/** Error categories. The values are stable. */
typedef enum bitnet_status_code {
  BITNET_STATUS_OK = 0,
  BITNET_STATUS_INVALID_ARGUMENT = 1,    /**< a bad argument from the caller */
  BITNET_STATUS_NOT_FOUND = 2,           /**< a file or name does not exist */
  BITNET_STATUS_PERMISSION_DENIED = 3,   /**< a file is not readable */
  BITNET_STATUS_INVALID_MODEL = 4,       /**< not a loadable, valid model */
  BITNET_STATUS_INCOMPATIBLE = 5,        /**< a model for another ABI version */
  BITNET_STATUS_OUT_OF_MEMORY = 6,       /**< an allocation failed */
  BITNET_STATUS_IO_ERROR = 7,            /**< reading or writing a file failed */
  BITNET_STATUS_INVALID_FORMAT = 8,      /**< a malformed data file (.npy) */
  BITNET_STATUS_FAILED_PRECONDITION = 9, /**< e.g. a context already running */
  BITNET_STATUS_RUN_FAILED = 10,         /**< the model's run returned non-0 */
  BITNET_STATUS_UNAVAILABLE = 11,        /**< not supported on this system */
  BITNET_STATUS_INTERNAL = 12,           /**< a bug in the runtime */
  BITNET_STATUS_OUT_OF_RANGE = 13,       /**< an input value the model does
                                              not accept (a token id, a
                                              position past the context) */
} bitnet_status_code;

/** Result of a fallible call: NULL on success, else an error the caller owns. */
typedef struct bitnet_status_object *bitnet_status;

/** The success value of bitnet_status. */
#define BITNET_OK ((bitnet_status)0)

/** Evaluates `expr` (a bitnet_status) and returns it from the enclosing
 *  function when it is an error. */
#define BITNET_RETURN_IF_ERROR(expr)                                           \
  do {                                                                         \
    bitnet_status bitnet_status_tmp_ = (expr);                                 \
    if (bitnet_status_tmp_ != BITNET_OK)                                       \
      return bitnet_status_tmp_;                                               \
  } while (0)

/** Makes an error status with a printf-style message. `code` must not be
 *  BITNET_STATUS_OK. Never returns NULL (an out-of-memory status at worst). */
BITNET_RT_API bitnet_status bitnet_status_make(bitnet_status_code code,
                                               const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** The code of `status`; BITNET_STATUS_OK for NULL. */
BITNET_RT_API bitnet_status_code bitnet_status_get_code(bitnet_status status);

/** The message of `status` ("OK" for NULL). Valid until the status is freed. */
BITNET_RT_API const char *bitnet_status_message(bitnet_status status);

/** Name of a status code, e.g. "INVALID_ARGUMENT"; "UNKNOWN" if out of range. */
BITNET_RT_API const char *bitnet_status_code_name(bitnet_status_code code);

/** Frees `status`. NULL is fine. */
BITNET_RT_API void bitnet_status_free(bitnet_status status);

/*===----------------------------------------------------------------------===*
 * Element types
 *===----------------------------------------------------------------------===*/

/** Short name of a dtype: "f32", "f16", "bf16", "f64", "i8", "i16", "i32",
 *  "i64", "u8", "bool"; "invalid" for anything else. */
BITNET_RT_API const char *bitnet_dtype_name(int32_t dtype);

/** Size of one element in bytes, or 0 for an unknown dtype. */
BITNET_RT_API int64_t bitnet_dtype_size(int32_t dtype);

/** 1 if `dtype` is a known, valid element type, else 0. */
BITNET_RT_API int bitnet_dtype_is_valid(int32_t dtype);

/*===----------------------------------------------------------------------===*
 * Memory pool
 *===----------------------------------------------------------------------===*/

/** A thread-safe pool of memory blocks. Freed blocks are kept and handed out
 *  again to later requests that fit, so a program that repeats the same
 *  allocations (a run loop) reaches a steady state with no fresh allocation. */
typedef struct bitnet_pool bitnet_pool;

/** Counters of a pool. All byte figures count block capacities. */
typedef struct bitnet_pool_stats {
  int64_t bytes_reserved;        /**< held by the pool: in use plus cached */
  int64_t peak_bytes_reserved;   /**< highest bytes_reserved so far */
  int64_t bytes_in_use;          /**< handed out and not returned yet */
  int64_t peak_bytes_in_use;     /**< highest bytes_in_use so far */
  int64_t allocations;           /**< requests served in total */
  int64_t allocations_from_pool; /**< ... by reusing a cached block */
  int64_t allocations_fresh;     /**< ... by asking the system */
  int64_t deallocations;         /**< blocks given back */
} bitnet_pool_stats;

/** Creates an empty pool with one reference. */
BITNET_RT_API bitnet_status bitnet_pool_create(bitnet_pool **out_pool);

/** Adds a reference to `pool` (NULL is ignored). */
BITNET_RT_API void bitnet_pool_retain(bitnet_pool *pool);

/** Drops a reference; the last one frees every block, even blocks still
 *  handed out, so return them first. NULL is ignored. */
BITNET_RT_API void bitnet_pool_release(bitnet_pool *pool);

/** Hands out `size` bytes (>= 0) aligned to `alignment` (a power of two up to
 *  1 MiB; 0 means 64). A cached block that fits is reused, else a fresh one
 *  is taken from the system. A size of 0 still yields a unique pointer. */
BITNET_RT_API bitnet_status bitnet_pool_allocate(bitnet_pool *pool,
                                                 int64_t size,
                                                 int64_t alignment,
                                                 void **out_ptr);

/** Gives a block from bitnet_pool_allocate() back to `pool` for reuse.
 *  NULL `ptr` is fine; a block given back twice is reported, not freed. */
BITNET_RT_API bitnet_status bitnet_pool_deallocate(bitnet_pool *pool,
                                                   void *ptr);

/** Pre-allocates one cached block of `size` bytes so that later requests up
 *  to that size are served from the pool (planning a known footprint). */
BITNET_RT_API bitnet_status bitnet_pool_reserve(bitnet_pool *pool, int64_t size,
                                                int64_t alignment);

/** Returns every cached (unused) block to the system. */
BITNET_RT_API void bitnet_pool_trim(bitnet_pool *pool);

/** Copies the pool's counters into `out_stats`. */
BITNET_RT_API bitnet_status bitnet_pool_get_stats(bitnet_pool *pool,
                                                  bitnet_pool_stats *out_stats);

/** Sets the peaks back to the current values (to measure a phase). */
BITNET_RT_API void bitnet_pool_reset_peaks(bitnet_pool *pool);

/*===----------------------------------------------------------------------===*
 * Thread pool
 *===----------------------------------------------------------------------===*/

/** A fixed set of worker threads, created once, that runs parallel loops.
 *  The calling thread takes part, so a pool of N threads starts N-1 workers.
 *  A loop started while the pool is busy with another caller's loop (or from
 *  inside a loop) runs on the calling thread instead of waiting. */
typedef struct bitnet_thread_pool bitnet_thread_pool;

/** Number of online CPU cores (at least 1): the usual thread count. */
BITNET_RT_API int32_t bitnet_default_num_threads(void);

/** Creates a pool of `num_threads` threads (>= 1, at most 1024). */
BITNET_RT_API bitnet_status bitnet_thread_pool_create(
    int32_t num_threads, bitnet_thread_pool **out_pool);

/** Adds a reference to `pool` (NULL is ignored). */
BITNET_RT_API void bitnet_thread_pool_retain(bitnet_thread_pool *pool);

/** Drops a reference; the last one stops and joins the workers. */
BITNET_RT_API void bitnet_thread_pool_release(bitnet_thread_pool *pool);

/** Threads of `pool` including the caller; 1 for NULL. */
BITNET_RT_API int32_t bitnet_thread_pool_size(const bitnet_thread_pool *pool);

/** Runs fn(arg, begin, end) over disjoint chunks that cover [0, n) exactly
 *  once and returns when all are done. n <= 0 calls nothing; a NULL pool runs
 *  fn(arg, 0, n) on the calling thread. Allocates nothing. */
BITNET_RT_API void bitnet_thread_pool_parallel_for(
    bitnet_thread_pool *pool, int64_t n,
    void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/*===----------------------------------------------------------------------===*
 * Models
 *===----------------------------------------------------------------------===*/

/** A loaded compiled model (a dlopen()ed shared object). */
typedef struct bitnet_model bitnet_model;

/** One input or output of a model, as seen by the runtime. */
typedef struct bitnet_tensor_desc {
  const char *name;     /**< owned by the model */
  int32_t dtype;        /**< a bitnet_dtype */
  int32_t rank;         /**< 0 .. BITNET_MAX_RANK */
  const int64_t *shape; /**< `rank` extents, owned by the model */
  int64_t num_elements; /**< product of the extents (1 for a scalar) */
  int64_t byte_size;    /**< num_elements * element size */
  int32_t flags;        /**< BITNET_TENSOR_* (BITNET_TENSOR_STATE: an input
                             the run updates in place, a KV cache;
                             BITNET_TENSOR_RANGE: an integer input whose
                             values must lie in [min_value, max_value]) */
  int64_t min_value;    /**< with BITNET_TENSOR_RANGE */
  int64_t max_value;    /**< with BITNET_TENSOR_RANGE */
} bitnet_tensor_desc;

/** Loads the model at `path`: checks that the file exists and is readable,
 *  dlopen()s it (RTLD_NOW | RTLD_LOCAL), checks the descriptor's magic and
 *  ABI version and validates it. The errors name the file and what was found
 *  and expected. A model compiled for a GPU is loaded onto the device too:
 *  UNAVAILABLE, with the reason, where there is no CUDA driver or GPU.
 *  The model's read-only data (its weights) stay mapped from the file, so
 *  processes that load one model share those pages; where transparent huge
 *  pages are on, the loader advises them (madvise MADV_HUGEPAGE) over those
 *  pages, which bitnet-compile aligns to 2 MiB, so that a kernel that caches
 *  the file in 2 MiB folios maps them whole (bitnet_model_mapping's
 *  huge_page_bytes says how much). */
BITNET_RT_API bitnet_status bitnet_model_load(const char *path,
                                              bitnet_model **out_model);

/** Adds a reference to `model` (NULL is ignored). */
BITNET_RT_API void bitnet_model_retain(bitnet_model *model);

/** Drops a reference; the last one unloads the shared object. */
BITNET_RT_API void bitnet_model_release(bitnet_model *model);

/** Whether models compiled for NVIDIA GPUs can run here: OK, or UNAVAILABLE
 *  saying why (no libcuda.so.1, cuInit failed, no device). Loads the CUDA
 *  driver with dlopen() on first call; CPU models never do. */
BITNET_RT_API bitnet_status bitnet_gpu_available(void);

/** Whether `model` runs on a GPU (its descriptor carries a GPU program). */
BITNET_RT_API int bitnet_model_is_gpu(const bitnet_model *model);

/** The raw descriptor exported by the model (NULL for NULL). */
BITNET_RT_API const bitnet_model_info *
bitnet_model_get_info(const bitnet_model *model);

/** The path the model was loaded from (NULL for NULL). */
BITNET_RT_API const char *bitnet_model_path(const bitnet_model *model);

/** The variant of the model chosen for this machine at load time (the CPU it
 *  was built for), or NULL when the baseline build runs. */
BITNET_RT_API const char *bitnet_model_variant_name(const bitnet_model *model);

/** Number of other entries the model carries besides its main one (0 for
 *  NULL): steps of other shapes over the same weights, such as "prefill"
 *  (bitnet-compile --prefill-tokens). */
BITNET_RT_API int32_t bitnet_model_num_entries(const bitnet_model *model);

/** The name of entry `index`, or NULL when it is out of range. */
BITNET_RT_API const char *bitnet_model_entry_name(const bitnet_model *model,
                                                  int32_t index);

/** Opens entry `name` of `model` as a model of its own, with its own inputs,
 *  outputs, workspace and run, on which contexts are created as on any
 *  model; its weights, metadata and mapping are `model`'s, which it keeps
 *  loaded (a reference) until it is released. NOT_FOUND lists the entries
 *  there are. An entry of an entry is not a thing: a model opened this way
 *  has none. */
BITNET_RT_API bitnet_status bitnet_model_open_entry(bitnet_model *model,
                                                    const char *name,
                                                    bitnet_model **out_entry);

/** The name of the entry `model` was opened as, or NULL for a model loaded
 *  from its file (its main entry). */
BITNET_RT_API const char *bitnet_model_opened_as(const bitnet_model *model);

/** Number of inputs (0 for NULL). */
BITNET_RT_API int32_t bitnet_model_num_inputs(const bitnet_model *model);

/** Number of outputs (0 for NULL). */
BITNET_RT_API int32_t bitnet_model_num_outputs(const bitnet_model *model);

/** Describes input `index`. */
BITNET_RT_API bitnet_status bitnet_model_input(const bitnet_model *model,
                                               int32_t index,
                                               bitnet_tensor_desc *out_desc);

/** Describes output `index`. */
BITNET_RT_API bitnet_status bitnet_model_output(const bitnet_model *model,
                                                int32_t index,
                                                bitnet_tensor_desc *out_desc);

/** Finds the input called `name`; NOT_FOUND lists the input names. */
BITNET_RT_API bitnet_status bitnet_model_find_input(const bitnet_model *model,
                                                    const char *name,
                                                    int32_t *out_index);

/** Finds the output called `name`; NOT_FOUND lists the output names. */
BITNET_RT_API bitnet_status bitnet_model_find_output(const bitnet_model *model,
                                                     const char *name,
                                                     int32_t *out_index);

/** The value of metadata entry `key` of the source model (e.g.
 *  "bitnet.vocab"), owned by the model; NULL when the model has no such entry
 *  or an argument is NULL. */
BITNET_RT_API const char *bitnet_model_metadata(const bitnet_model *model,
                                                const char *key);

/** Checks the model file against the checksum bitnet-compile recorded in it
 *  (model_abi.h): OK; INVALID_MODEL when the bytes differ (the file is
 *  damaged); UNAVAILABLE when it carries no checksum; FAILED_PRECONDITION
 *  when the file at the model's path is no longer the one loaded. Reads the
 *  whole file (about 0.2 s a GB from the page cache). A checksum catches
 *  damage, not malice: a compiled model is native code, and loading one is
 *  running it. */
BITNET_RT_API bitnet_status bitnet_model_verify(const bitnet_model *model);

/** Sizes of the model's shared object as mapped in this process. */
typedef struct bitnet_model_mapping {
  int64_t read_only_bytes; /**< r--: constants and weights */
  int64_t code_bytes;      /**< r-x: machine code */
  int64_t writable_bytes;  /**< rw-: data, relocations */
  /** Of the read-only data, the bytes the kernel maps in 2 MiB pages: the
   *  file's pages it caches in 2 MiB folios (smaps' FilePmdMapped; the
   *  loader asks for them, see bitnet_model_load), or the copy
   *  bitnet_model_use_huge_pages() made (AnonHugePages). Pages not yet read
   *  count as not mapped. */
  int64_t huge_page_bytes;
} bitnet_model_mapping;

/** Measures the model's mappings from /proc/self/smaps (UNAVAILABLE where
 *  that file does not exist). Read-only data moved onto huge pages
 *  (bitnet_model_use_huge_pages) still counts as read-only data. */
BITNET_RT_API bitnet_status
bitnet_model_get_mapping(const bitnet_model *model,
                         bitnet_model_mapping *out_mapping);

/** Moves the model's read-only data (its packed weights and constants) onto
 *  transparent huge pages: a private copy at the same addresses, in 2 MiB
 *  pages where the kernel grants them, replacing the file's 4 KiB pages.
 *  Decoding streams every weight once a token, and with 2 MiB pages it takes
 *  far fewer TLB misses and the hardware prefetchers are not stopped at
 *  every 4 KiB; the cost is a copy (about 0.3 s a GB) and that the weights
 *  are no longer shared with other processes that map the same file. Call it
 *  after loading and before the first run, with no other thread using the
 *  model or its entries (they share the mapping). Sets `*out_bytes` (may be
 *  NULL) to the bytes moved, 0 when the model's mapping was moved before.
 *  UNAVAILABLE where transparent huge pages are off
 *  (/sys/kernel/mm/transparent_hugepage/enabled says "never") or the
 *  system refuses the memory; the model is then unchanged and usable. */
BITNET_RT_API bitnet_status bitnet_model_use_huge_pages(bitnet_model *model,
                                                        int64_t *out_bytes);

/*===----------------------------------------------------------------------===*
 * Profiling
 *===----------------------------------------------------------------------===*/

/** Callbacks a context calls while profiling. Any field may be NULL. They are
 *  called on the thread that runs the model, around every run and around
 *  every kernel the compiled code reports. */
typedef struct bitnet_profiler {
  void *user; /**< passed back to every callback */
  /** Before a run; `model` is the descriptor's name. */
  void (*run_begin)(void *user, const char *model);
  /** `result` is the value bitnet_model_run returned (0 on success). */
  void (*run_end)(void *user, const char *model, int32_t result);
  /** Before a kernel, with the bytes it moves and its arithmetic operations. */
  void (*kernel_begin)(void *user, const char *kernel, int64_t bytes,
                       int64_t flops);
  /** After the kernel last begun on this thread. */
  void (*kernel_end)(void *user, const char *kernel);
} bitnet_profiler;

/** A built-in profiler: per-kernel statistics and a Chrome trace. It is
 *  thread-safe, so several contexts may report to one collector. */
typedef struct bitnet_profile_collector bitnet_profile_collector;

/** Totals for one kernel name. */
typedef struct bitnet_kernel_stats {
  const char *name; /**< owned by the collector */
  int64_t calls;    /**< completed calls */
  int64_t total_ns; /**< time inside the kernel, summed over calls */
  int64_t min_ns;   /**< shortest call */
  int64_t max_ns;   /**< longest call */
  int64_t bytes; /**< sum over calls of the bytes reported */
  int64_t flops; /**< sum over calls of the flops reported */
} bitnet_kernel_stats;

/** Creates a collector that keeps up to `max_events` trace events (0 means
 *  1,000,000; statistics go on being gathered past that limit). */
BITNET_RT_API bitnet_status bitnet_profile_collector_create(
    int64_t max_events, bitnet_profile_collector **out_collector);

/** Frees a collector. Contexts using it must be freed or switched first. */
BITNET_RT_API void
bitnet_profile_collector_free(bitnet_profile_collector *collector);

/** Callbacks that report to `collector`, for bitnet_context_options or
 *  bitnet_context_set_profiler(). */
BITNET_RT_API bitnet_profiler
bitnet_profile_collector_profiler(bitnet_profile_collector *collector);

/** Forgets everything collected so far. */
BITNET_RT_API void
bitnet_profile_collector_reset(bitnet_profile_collector *collector);

/** Number of distinct kernel names seen (0 for NULL). */
BITNET_RT_API int32_t
bitnet_profile_collector_num_kernels(bitnet_profile_collector *collector);

/** Statistics of kernel `index`, in order of first appearance. */
BITNET_RT_API bitnet_status bitnet_profile_collector_kernel(
    bitnet_profile_collector *collector, int32_t index,
    bitnet_kernel_stats *out_stats);

/** Number of runs seen and their total time. */
BITNET_RT_API bitnet_status bitnet_profile_collector_runs(
    bitnet_profile_collector *collector, int64_t *out_runs,
    int64_t *out_total_ns);

/** Prints a per-kernel table (calls, total ms, mean us, share of the run
 *  time, GB/s, GFLOP/s), slowest kernel first. */
BITNET_RT_API bitnet_status bitnet_profile_collector_write_table(
    bitnet_profile_collector *collector, FILE *stream);

/** Writes the events as Chrome trace JSON (opens in Perfetto and
 *  chrome://tracing): {"traceEvents":[{"name","ph":"X","ts","dur","pid",
 *  "tid",...}]} with times in microseconds. */
BITNET_RT_API bitnet_status bitnet_profile_collector_write_trace(
    bitnet_profile_collector *collector, const char *path);

/*===----------------------------------------------------------------------===*
 * Execution contexts
 *===----------------------------------------------------------------------===*/

/** Everything one run needs: the workspace (from a pool, allocated once), the
 *  thread pool binding, the profiler and the buffer table. */
typedef struct bitnet_context bitnet_context;

/** How to build a context. Zero-initialise it; every field is optional. */
typedef struct bitnet_context_options {
  /** Pool for the workspace; NULL gives the context a private pool. */
  bitnet_pool *pool;
  /** Threads for the kernels' parallel loops; NULL runs everything on the
   *  calling thread (the exec_ctx then has no parallel_for). */
  bitnet_thread_pool *thread_pool;
  /** Profiling callbacks (copied); NULL turns profiling off, and then the
   *  exec_ctx's kernel_begin / kernel_end are NULL and cost nothing. */
  const bitnet_profiler *profiler;
} bitnet_context_options;

/** Creates a context for `model`. `options` may be NULL. */
BITNET_RT_API bitnet_status bitnet_context_create(
    bitnet_model *model, const bitnet_context_options *options,
    bitnet_context **out_context);

/** Frees a context and gives its workspace back to the pool. NULL is fine. */
BITNET_RT_API void bitnet_context_free(bitnet_context *context);

/** The context's model (NULL for NULL). */
BITNET_RT_API bitnet_model *bitnet_context_model(const bitnet_context *context);

/** Size of the workspace the context holds, in bytes. */
BITNET_RT_API int64_t bitnet_context_workspace_bytes(
    const bitnet_context *context);

/** Turns profiling on (`profiler` non-NULL, copied) or off (NULL) for the
 *  following runs. Not while a run is in progress. */
BITNET_RT_API bitnet_status bitnet_context_set_profiler(
    bitnet_context *context, const bitnet_profiler *profiler);

/** Runs the model once. `inputs` holds num_inputs pointers in the model's
 *  input order, `outputs` num_outputs pointers in output order; each points
 *  to a dense row-major array of the tensor's dtype and shape (see
 *  bitnet_model_input / bitnet_model_output). Counts and pointers are
 *  checked; shapes cannot be. Allocates nothing on success. */
BITNET_RT_API bitnet_status bitnet_context_run(bitnet_context *context,
                                               const void *const *inputs,
                                               int32_t num_inputs,
                                               void *const *outputs,
                                               int32_t num_outputs);

/** A caller's buffer with what it holds, for bitnet_context_run_checked. */
typedef struct bitnet_tensor {
  void *data;           /**< dense row-major elements */
  int32_t dtype;        /**< a bitnet_dtype */
  int32_t rank;
  const int64_t *shape; /**< `rank` extents */
  int64_t byte_size;    /**< bytes available at `data` */
} bitnet_tensor;

/** Like bitnet_context_run, and also checks every buffer's dtype, shape and
 *  size against the model, and that no output overlaps another buffer. */
BITNET_RT_API bitnet_status bitnet_context_run_checked(
    bitnet_context *context, const bitnet_tensor *inputs, int32_t num_inputs,
    const bitnet_tensor *outputs, int32_t num_outputs);

/*===----------------------------------------------------------------------===*
 * GPU contexts: data kept on the device between runs
 *===----------------------------------------------------------------------===*/

/* A context of a GPU model holds a device copy of every run buffer, numbered
 * as in bitnet_model_run: input i is buffer i, output j is buffer
 * num_inputs + j. bitnet_context_run copies the inputs (state included) to
 * the device, launches the program and copies the outputs and the state
 * back. The calls below do those parts one at a time, so that data can stay
 * on the device between runs: a decoder's KV caches uploaded once (zeroed)
 * and left there while only the tokens, the position and the logits move, or
 * a benchmark that times the kernels without the host transfers. Work is
 * ordered on the context's stream. On a CPU model they return
 * FAILED_PRECONDITION. */

/** Copies `data` (the buffer's byte_size bytes) to the device copy of run
 *  buffer `buffer`; returns when the copy is done. */
BITNET_RT_API bitnet_status bitnet_context_gpu_upload(bitnet_context *context,
                                                      int32_t buffer,
                                                      const void *data);

/** Copies the device copy of run buffer `buffer` into `data`, after all the
 *  work enqueued before; returns when the copy is done. */
BITNET_RT_API bitnet_status bitnet_context_gpu_download(bitnet_context *context,
                                                        int32_t buffer,
                                                        void *data);

/** Enqueues launches [first, first + count) of the model's launch list
 *  (bitnet_model_info.gpu->launches; count < 0: all from `first` on) on the
 *  context's stream, over the device buffers, and returns without waiting.
 *  The whole list (0, -1) is one run of the model on the device. */
BITNET_RT_API bitnet_status bitnet_context_gpu_launch(bitnet_context *context,
                                                      int32_t first,
                                                      int32_t count);

/** Waits for the work enqueued on the context's stream. */
BITNET_RT_API bitnet_status
bitnet_context_gpu_synchronize(bitnet_context *context);

/** The context's CUDA stream (a CUstream, the same as a cudaStream_t) for a
 *  caller that records events on it; NULL for a CPU model or NULL. */
BITNET_RT_API void *bitnet_context_gpu_stream(const bitnet_context *context);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_BITNET_RT_H */
