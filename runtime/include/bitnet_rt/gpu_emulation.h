/*===- gpu_emulation.h - GPU kernels built to run on the host ------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * `bitnet-compile --target=nvptx --gpu-emulation` adds to a GPU model, beside
 * its PTX, a host build of every kernel, so that the model runs without a GPU
 * through the CUDA driver emulator (libbitnet_cuda_emulator.so, loaded in
 * place of libcuda.so.1 when $BITNET_CUDA_DRIVER names it). The emulator runs
 * each thread of a block as a fiber, so barriers and warp shuffles behave as
 * on the GPU, and checks what a GPU does not: out-of-bounds accesses, a
 * barrier or a shuffle that not every thread reaches, a launch whose block
 * size is not the one the kernel was built for. It is for testing the GPU
 * path (the runtime's driver calls, the launch list, the kernels' logic) on
 * machines without a GPU; it is slow.
 *
 * For a kernel NAME the model exports:
 *
 *   void NAME__bitnet_emu(void *const *args, const bitnet_emu_ops *ops,
 *                         bitnet_emu_thread *thread);
 *     runs one thread: `args` holds the kernel's parameters (device
 *     pointers, as cuLaunchKernel gets them) and then one buffer per
 *     workgroup (shared memory) array, shared by the block's threads;
 *
 *   const int64_t NAME__bitnet_emu_info[];
 *     { P parameters, W workgroup arrays, the block size x, y, z the kernel
 *       was built for (0: any), the bytes of each workgroup array (W), the
 *       bytes each parameter spans (P), the alignment in bytes each
 *       parameter's address needs (P) }.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_GPU_EMULATION_H
#define BITNET_RT_GPU_EMULATION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a kernel reads of its own thread; the kernels read these fields at
 *  fixed offsets (int32 slots 0-11), the emulator's state follows. */
typedef struct bitnet_emu_thread {
  int32_t thread_id[3];
  int32_t block_id[3];
  int32_t block_dim[3];
  int32_t grid_dim[3];
} bitnet_emu_thread;

/** gpu.shuffle modes (bitnet_emu_ops.shuffle). */
enum {
  BITNET_EMU_SHUFFLE_XOR = 0,
  BITNET_EMU_SHUFFLE_DOWN = 1,
  BITNET_EMU_SHUFFLE_UP = 2,
  BITNET_EMU_SHUFFLE_IDX = 3,
};

/** The calls a kernel makes into the emulator, in this order (pointer slots
 *  0 to 3). */
typedef struct bitnet_emu_ops {
  /** gpu.barrier: returns once every thread of the block has reached it. */
  void (*barrier)(bitnet_emu_thread *thread);
  /** gpu.shuffle of 32 bits with every lane of the warp; `width` lanes take
   *  part, a lane reading outside them gets its own value. */
  int32_t (*shuffle)(bitnet_emu_thread *thread, int32_t mode, int32_t value,
                     int32_t offset, int32_t width);
  /** A check failed (`message` says which access): the launch fails with
   *  CUDA_ERROR_ILLEGAL_ADDRESS and the call does not return. */
  void (*fault)(bitnet_emu_thread *thread, const char *message);
  /** Made before every load (`write` 0) and store (1) of `bytes` bytes at
   *  `address`, after its bounds check: the emulator reports races, an
   *  access that another thread of the block made since the last barrier,
   *  or another block in the same launch, where one of the two writes. */
  void (*access)(bitnet_emu_thread *thread, uint64_t address, int32_t bytes,
                 int32_t write);
} bitnet_emu_ops;

/** Slots of NAME__bitnet_emu_info. */
enum {
  BITNET_EMU_INFO_PARAMS = 0,
  BITNET_EMU_INFO_WORKGROUP = 1,
  BITNET_EMU_INFO_BLOCK = 2, /* 3 slots */
  BITNET_EMU_INFO_WORKGROUP_BYTES = 5,
};

typedef void (*bitnet_emu_kernel_fn)(void *const *args,
                                     const bitnet_emu_ops *ops,
                                     bitnet_emu_thread *thread);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_GPU_EMULATION_H */
