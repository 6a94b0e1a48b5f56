/*===- gpu.h - Running GPU models through the CUDA driver API -------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * A model compiled for a GPU carries a bitnet_gpu_program (model_abi.h). The
 * runtime loads libcuda.so.1 with dlopen() the first time such a model is
 * loaded (never for CPU models), so the library itself needs no CUDA at build
 * or load time.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_SRC_GPU_H
#define BITNET_RT_SRC_GPU_H

#include "internal.h"

/** A GPU program loaded on the device: module, functions, weights. */
typedef struct bitnet_gpu_model bitnet_gpu_model;
/** Per-context device memory: workspace and run buffers, and a stream. */
typedef struct bitnet_gpu_context bitnet_gpu_context;

/** Checks `program`'s tables (counts, pointers into `object`, indices and
 *  offsets) against a model with `num_buffers` run buffers of the sizes in
 *  `buffers`; INVALID_MODEL naming `path` otherwise. */
bitnet_status bitnet_gpu_check_program(const char *path,
                                       const bitnet_gpu_program *program,
                                       const bitnet_object_map *object,
                                       const bitnet_tensor_desc *buffers,
                                       int32_t num_buffers);

/** Loads `program` on device 0 (or $BITNET_CUDA_DEVICE): UNAVAILABLE with a
 *  message when there is no driver or no device, or the device is older than
 *  the code. */
bitnet_status bitnet_gpu_model_create(const char *path,
                                      const bitnet_gpu_program *program,
                                      bitnet_gpu_model **out_model);
void bitnet_gpu_model_destroy(bitnet_gpu_model *model);

/** Allocates device copies of the run buffers (`sizes`, `count` of them) and
 *  the program's workspace. `state[i]` is non-zero for an input the run
 *  updates in place (BITNET_TENSOR_STATE). */
bitnet_status bitnet_gpu_context_create(bitnet_gpu_model *model,
                                        const int64_t *sizes,
                                        const int32_t *state, int32_t count,
                                        bitnet_gpu_context **out_context);
void bitnet_gpu_context_destroy(bitnet_gpu_context *context);

/** One run: copies the first `num_inputs` buffers to the device, launches
 *  the program, copies the rest and the state inputs back. With `profiler`
 *  set (and kernel hooks in it), reports every launch, synchronising after
 *  each. */
bitnet_status bitnet_gpu_run(bitnet_gpu_context *context,
                             void *const *buffers, int32_t num_inputs,
                             const bitnet_profiler *profiler);

/** Copies host `data` into the device copy of run buffer `index`. */
bitnet_status bitnet_gpu_upload(bitnet_gpu_context *context, int32_t index,
                                const void *data);
/** Copies the device copy of run buffer `index` into host `data`. */
bitnet_status bitnet_gpu_download(bitnet_gpu_context *context, int32_t index,
                                  void *data);
/** Enqueues launches [first, first + count) on the context's stream. */
bitnet_status bitnet_gpu_enqueue(bitnet_gpu_context *context, int32_t first,
                                 int32_t count);
bitnet_status bitnet_gpu_synchronize(bitnet_gpu_context *context);
/** The context's CUstream. */
void *bitnet_gpu_stream(const bitnet_gpu_context *context);

#endif /* BITNET_RT_SRC_GPU_H */
