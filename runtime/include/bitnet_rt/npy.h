/*===- bitnet_rt/npy.h - Reading and writing .npy files -------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * A small reader and writer of NumPy's .npy format (versions 1.0, 2.0 and
 * 3.0), for the dtypes a model uses: <f4 <f2 <f8 |i1 <i2 <i4 <i8 |u1 |b1.
 * Little-endian, C order only; everything else is rejected with a message
 * that says what was found.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_NPY_H
#define BITNET_RT_NPY_H

#include "bitnet_rt/bitnet_rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An array read from a .npy file. */
typedef struct bitnet_npy_array {
  int32_t dtype;                  /**< a bitnet_dtype */
  int32_t rank;                   /**< 0 .. BITNET_MAX_RANK */
  int64_t shape[BITNET_MAX_RANK]; /**< `rank` extents */
  int64_t num_elements;
  int64_t byte_size;
  void *data;        /**< `byte_size` bytes, row-major */
  bitnet_pool *pool; /**< where `data` came from (a reference), or NULL */
} bitnet_npy_array;

/** Reads the .npy file at `path` into `out_array`. The data comes from `pool`
 *  when it is not NULL, else from malloc. On error `out_array` is empty. */
BITNET_RT_API bitnet_status bitnet_npy_read(const char *path,
                                            bitnet_pool *pool,
                                            bitnet_npy_array *out_array);

/** Frees the data of `array` and empties it. NULL is fine. */
BITNET_RT_API void bitnet_npy_array_free(bitnet_npy_array *array);

/** Writes a version 1.0 .npy file. bf16 has no NumPy dtype and is refused. */
BITNET_RT_API bitnet_status bitnet_npy_write(const char *path, int32_t dtype,
                                             int32_t rank,
                                             const int64_t *shape,
                                             const void *data);

/** The .npy descr of `dtype` ("<f4", "|i1", ...), or NULL if it has none. */
BITNET_RT_API const char *bitnet_npy_descr(int32_t dtype);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BITNET_RT_NPY_H */
