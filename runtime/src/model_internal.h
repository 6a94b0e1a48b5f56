/*===- model_internal.h - The model object, shared with the context -*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_SRC_MODEL_INTERNAL_H
#define BITNET_RT_SRC_MODEL_INTERNAL_H

#include <stdatomic.h>
#include <sys/types.h>

#include "gpu.h"
#include "internal.h"

struct bitnet_model {
  atomic_int refs;
  void *handle;                  /* from dlopen */
  const bitnet_model_info *info; /* validated */
  bitnet_model_run_fn run;       /* the baseline build's entry */
  bitnet_model_run_fn run_fn;    /* the build chosen for this machine */
  int64_t workspace_bytes;       /* of the chosen build */
  int64_t workspace_alignment;
  const char *variant;           /* its name, NULL for the baseline */
  char *path;                    /* as given, "./" added to a bare name */
  bitnet_tensor_desc *descs;     /* inputs, then outputs */
  dev_t file_dev;                /* the file that was loaded, to find its */
  ino_t file_ino;                /* mappings in /proc/self/maps */
  bitnet_gpu_model *gpu;         /* loaded GPU program, or NULL */
  /* An entry opened with bitnet_model_open_entry: the model whose file it
   * is (a reference, released with it) and its name; NULL otherwise. Its
   * handle is NULL: the parent's dlopen holds the object. */
  struct bitnet_model *parent;
  const char *entry;
  /* Read-only data moved to huge pages (bitnet_model_use_huge_pages), and
   * its bytes (no longer the file's mapping): set on the model that holds
   * the dlopen handle. */
  int huge_pages;
  int64_t huge_page_bytes;
};

/* OUT_OF_RANGE when input `index`, at `data`, holds a value outside the
 * range its descriptor declares (BITNET_TENSOR_RANGE). */
bitnet_status bitnet_check_input_range(const bitnet_model *model,
                                       int32_t index, const void *data);

/* XXH64 (seed 0) of `size` bytes. */
uint64_t bitnet_xxh64(const void *data, size_t size);

#endif /* BITNET_RT_SRC_MODEL_INTERNAL_H */
