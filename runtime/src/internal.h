/*===- internal.h - Shared helpers of the runtime sources -----------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_SRC_INTERNAL_H
#define BITNET_RT_SRC_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "bitnet_rt/bitnet_rt.h"

/** Monotonic clock in nanoseconds. */
static inline int64_t bitnet_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/** Returns INVALID_ARGUMENT naming the NULL argument when `ptr` is NULL. */
#define BITNET_CHECK_ARG(ptr, fn)                                              \
  do {                                                                         \
    if ((ptr) == NULL)                                                         \
      return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,                \
                                "%s: '%s' must not be NULL", fn, #ptr);        \
  } while (0)

/** a * b for non-negative values; 0 on overflow of INT64_MAX, else 1. */
static inline int bitnet_mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a != 0 && b > INT64_MAX / a)
    return 0;
  *out = a * b;
  return 1;
}

/** Stack the runtime keeps free beyond what a model declares, for the
 *  frames of its code and of the runtime (bitnet_model_info.stack_bytes). */
#define BITNET_STACK_MARGIN (256 * 1024)

/** Bytes of stack left to the calling thread below this call, or -1 when it
 *  cannot be told (thread_pool.c). */
int64_t bitnet_stack_left(void);

/** The stack each worker of `pool` has, or INT64_MAX with no workers. */
int64_t bitnet_thread_pool_worker_stack(const bitnet_thread_pool *pool);

/** An output file written under a temporary name beside `path` and renamed
 *  over it when complete: a failed write leaves no half-written file, and
 *  an existing file at `path` stays as it was (out_file.c). */
typedef struct bitnet_out_file {
  FILE *file;
  const char *path;
  char *tmp;
} bitnet_out_file;

/** Opens `out` for `path`; NULL with errno set on failure. */
FILE *bitnet_out_file_open(bitnet_out_file *out, const char *path);

/** Closes `out`; with `ok`, renames it to its path. Returns 1 when the file
 *  is in place, else 0 with errno set (and the temporary removed). */
int bitnet_out_file_close(bitnet_out_file *out, int ok);

/* The loaded object's segments (PT_LOAD, at their run-time addresses): every
 * pointer of a descriptor must point into them, so that a damaged
 * descriptor is refused instead of read through. */
#define BITNET_MAX_SEGMENTS 16
typedef struct bitnet_object_map {
  int count;
  struct {
    uintptr_t begin, end;
    unsigned flags; /* PF_R, PF_W, PF_X */
    uint64_t offset;     /* of `begin` in the file */
    uintptr_t file_end;  /* end of the part read from the file (then zeros) */
  } segments[BITNET_MAX_SEGMENTS];
} bitnet_object_map;

/* Whether [p, p + bytes) lies in one segment with all of `flags`. */
int bitnet_object_holds(const bitnet_object_map *map, const void *p,
                        int64_t bytes, unsigned flags);

/* Whether `s` is a NUL-terminated string in a readable segment. */
int bitnet_object_holds_string(const bitnet_object_map *map, const char *s);

#endif /* BITNET_RT_SRC_INTERNAL_H */
