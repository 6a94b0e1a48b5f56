/*===- emulator_kernels.c - Kernels for the CUDA driver emulator's tests --===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Host kernels with the ABI of bitnet_rt/gpu_emulation.h, written by hand
 * the way bitnet-gpu-emulation builds them (an access call before every
 * load and store), some of them wrong on purpose, and the PTX entries that
 * name them. emulator_test.cc runs them through libbitnet_cuda_emulator.
 *
 *===----------------------------------------------------------------------===*/

#include "bitnet_rt/gpu_emulation.h"

#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

#define ENTRY2(name)                                                           \
  ".visible .entry " #name "(\n  .param .u64 " #name "_0,\n  .param .u64 " #name \
  "_1\n)\n{\n  ret;\n}\n"

EXPORT const char bitnet_emu_test_ptx[] =
    "//\n.version 8.0\n.target sm_90\n.address_size 64\n\n" ENTRY2(copy)
        ENTRY2(oob) ENTRY2(divergent_barrier) ENTRY2(warp_shuffles)
            ENTRY2(divergent_shuffle) ENTRY2(shared_race)
                ENTRY2(shared_ordered) ENTRY2(block_race)
                    ENTRY2(missing_host_build) ENTRY2(strided);

/* Loads and stores as the generated code makes them. */
static float load_f32(const bitnet_emu_ops *ops, bitnet_emu_thread *t,
                      const float *p) {
  ops->access(t, (uint64_t)(uintptr_t)p, 4, 0);
  return *p;
}
static void store_f32(const bitnet_emu_ops *ops, bitnet_emu_thread *t,
                      float *p, float v) {
  ops->access(t, (uint64_t)(uintptr_t)p, 4, 1);
  *p = v;
}

/* (in: f32[64] 16-byte aligned, out: f32[64]), blocks of 64: out = in. */
EXPORT void copy__bitnet_emu(void *const *args, const bitnet_emu_ops *ops,
                             bitnet_emu_thread *t) {
  int i = t->thread_id[0];
  store_f32(ops, t, (float *)args[1] + i,
            load_f32(ops, t, (const float *)args[0] + i));
}
EXPORT const int64_t copy__bitnet_emu_info[] = {2, 0, 64, 1, 1,
                                                256, 256, 16, 4};

/* A thread reports an out-of-bounds access. */
EXPORT void oob__bitnet_emu(void *const *args, const bitnet_emu_ops *ops,
                            bitnet_emu_thread *t) {
  (void)args;
  if (t->thread_id[0] == 5)
    ops->fault(t, "memref.store out of bounds in kernel oob");
}
EXPORT const int64_t oob__bitnet_emu_info[] = {2, 0, 32, 1, 1, 4, 4, 4, 4};

/* Half the block returns before a barrier the other half waits at. */
EXPORT void divergent_barrier__bitnet_emu(void *const *args,
                                          const bitnet_emu_ops *ops,
                                          bitnet_emu_thread *t) {
  (void)args;
  if (t->thread_id[0] < 16)
    ops->barrier(t);
}
EXPORT const int64_t divergent_barrier__bitnet_emu_info[] = {2, 0, 0, 0, 0,
                                                             4, 4, 4, 4};

/* (out: i32[4 * 64]), blocks of 64 (two warps): per thread, a butterfly
 * sum of the lane ids, the next lane's id (down 1), the previous lane's
 * (up 1) and lane 3's (idx 3); a lane shifted out of the warp keeps its own
 * value. */
EXPORT void warp_shuffles__bitnet_emu(void *const *args,
                                      const bitnet_emu_ops *ops,
                                      bitnet_emu_thread *t) {
  int32_t *out = args[1];
  int tid = t->thread_id[0];
  int32_t lane = tid % 32, sum = lane;
  for (int32_t offset = 16; offset >= 1; offset /= 2)
    sum += ops->shuffle(t, BITNET_EMU_SHUFFLE_XOR, sum, offset, 32);
  int32_t got[4] = {sum,
                    ops->shuffle(t, BITNET_EMU_SHUFFLE_DOWN, lane, 1, 32),
                    ops->shuffle(t, BITNET_EMU_SHUFFLE_UP, lane, 1, 32),
                    ops->shuffle(t, BITNET_EMU_SHUFFLE_IDX, lane, 3, 32)};
  for (int k = 0; k < 4; ++k) {
    ops->access(t, (uint64_t)(uintptr_t)&out[4 * tid + k], 4, 1);
    out[4 * tid + k] = got[k];
  }
}
EXPORT const int64_t warp_shuffles__bitnet_emu_info[] = {2,    0, 64, 1, 1,
                                                         4,    1024, 4, 4};

/* Only half the lanes of a warp shuffle. */
EXPORT void divergent_shuffle__bitnet_emu(void *const *args,
                                          const bitnet_emu_ops *ops,
                                          bitnet_emu_thread *t) {
  (void)args;
  if (t->thread_id[0] % 32 < 16)
    ops->shuffle(t, BITNET_EMU_SHUFFLE_XOR, 1, 1, 32);
}
EXPORT const int64_t divergent_shuffle__bitnet_emu_info[] = {2, 0, 32, 1, 1,
                                                             4, 4, 4, 4};

/* (unused, out: f32[64]) and one workgroup array of 64 floats: each thread
 * writes its slot, then (after a barrier in shared_ordered only) reads its
 * neighbour's. */
static void neighbours(void *const *args, const bitnet_emu_ops *ops,
                       bitnet_emu_thread *t, int barrier) {
  float *smem = args[2], *out = args[1];
  int i = t->thread_id[0];
  store_f32(ops, t, &smem[i], (float)i);
  if (barrier)
    ops->barrier(t);
  store_f32(ops, t, &out[i], load_f32(ops, t, &smem[(i + 1) % 64]));
}
EXPORT void shared_race__bitnet_emu(void *const *args,
                                    const bitnet_emu_ops *ops,
                                    bitnet_emu_thread *t) {
  neighbours(args, ops, t, 0);
}
EXPORT void shared_ordered__bitnet_emu(void *const *args,
                                       const bitnet_emu_ops *ops,
                                       bitnet_emu_thread *t) {
  neighbours(args, ops, t, 1);
}
EXPORT const int64_t shared_race__bitnet_emu_info[] = {2, 1, 64, 1, 1, 256,
                                                       4, 256, 4, 4};
EXPORT const int64_t shared_ordered__bitnet_emu_info[] = {2, 1, 64, 1, 1, 256,
                                                          4, 256, 4, 4};

/* Thread 0 of every block writes out[0]. */
EXPORT void block_race__bitnet_emu(void *const *args,
                                   const bitnet_emu_ops *ops,
                                   bitnet_emu_thread *t) {
  if (t->thread_id[0] == 0)
    store_f32(ops, t, (float *)args[1], (float)t->block_id[0]);
}
EXPORT const int64_t block_race__bitnet_emu_info[] = {2, 0, 32, 1, 1,
                                                      4, 4, 4, 4};

/* (in: f32[256], out: f32[32]), blocks of 32: lane i reads in[8 i], one
 * float from each 32-byte sector, and writes out[i] (coalesced). */
EXPORT void strided__bitnet_emu(void *const *args, const bitnet_emu_ops *ops,
                                bitnet_emu_thread *t) {
  int i = t->thread_id[0];
  store_f32(ops, t, (float *)args[1] + i,
            load_f32(ops, t, (const float *)args[0] + 8 * i));
}
EXPORT const int64_t strided__bitnet_emu_info[] = {2, 0, 32, 1, 1,
                                                   1024, 128, 4, 4};
