/*===- status.c - Status objects and dtype helpers ------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct bitnet_status_object {
  bitnet_status_code code;
  int is_static; /* the out-of-memory fallback is never freed */
  char *message;
};

static char oom_message[] = "out of memory while reporting an error";
static struct bitnet_status_object oom_status = {BITNET_STATUS_OUT_OF_MEMORY,
                                                 1, oom_message};

const char *bitnet_rt_version(void) { return BITNET_RT_VERSION; }

bitnet_status bitnet_status_make(bitnet_status_code code, const char *format,
                                 ...) {
  if (code == BITNET_STATUS_OK)
    code = BITNET_STATUS_INTERNAL;
  if (format == NULL)
    format = "(no message)";
  va_list args;
  va_start(args, format);
  int len = vsnprintf(NULL, 0, format, args);
  va_end(args);
  if (len < 0)
    len = 0;
  struct bitnet_status_object *status =
      malloc(sizeof(*status) + (size_t)len + 1);
  if (status == NULL)
    return &oom_status;
  status->code = code;
  status->is_static = 0;
  status->message = (char *)(status + 1);
  va_start(args, format);
  vsnprintf(status->message, (size_t)len + 1, format, args);
  va_end(args);
  return status;
}

bitnet_status_code bitnet_status_get_code(bitnet_status status) {
  return status ? status->code : BITNET_STATUS_OK;
}

const char *bitnet_status_message(bitnet_status status) {
  return status ? status->message : "OK";
}

const char *bitnet_status_code_name(bitnet_status_code code) {
  switch (code) {
  case BITNET_STATUS_OK: return "OK";
  case BITNET_STATUS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case BITNET_STATUS_NOT_FOUND: return "NOT_FOUND";
  case BITNET_STATUS_PERMISSION_DENIED: return "PERMISSION_DENIED";
  case BITNET_STATUS_INVALID_MODEL: return "INVALID_MODEL";
  case BITNET_STATUS_INCOMPATIBLE: return "INCOMPATIBLE";
  case BITNET_STATUS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
  case BITNET_STATUS_IO_ERROR: return "IO_ERROR";
  case BITNET_STATUS_INVALID_FORMAT: return "INVALID_FORMAT";
  case BITNET_STATUS_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
  case BITNET_STATUS_RUN_FAILED: return "RUN_FAILED";
  case BITNET_STATUS_UNAVAILABLE: return "UNAVAILABLE";
  case BITNET_STATUS_INTERNAL: return "INTERNAL";
  case BITNET_STATUS_OUT_OF_RANGE: return "OUT_OF_RANGE";
  }
  return "UNKNOWN";
}

void bitnet_status_free(bitnet_status status) {
  if (status != NULL && !status->is_static)
    free(status);
}

const char *bitnet_dtype_name(int32_t dtype) {
  switch (dtype) {
  case BITNET_DTYPE_F32: return "f32";
  case BITNET_DTYPE_F16: return "f16";
  case BITNET_DTYPE_BF16: return "bf16";
  case BITNET_DTYPE_F64: return "f64";
  case BITNET_DTYPE_I8: return "i8";
  case BITNET_DTYPE_I16: return "i16";
  case BITNET_DTYPE_I32: return "i32";
  case BITNET_DTYPE_I64: return "i64";
  case BITNET_DTYPE_U8: return "u8";
  case BITNET_DTYPE_BOOL: return "bool";
  case BITNET_DTYPE_U16: return "u16";
  case BITNET_DTYPE_U32: return "u32";
  case BITNET_DTYPE_U64: return "u64";
  default: return "invalid";
  }
}

int64_t bitnet_dtype_size(int32_t dtype) {
  switch (dtype) {
  case BITNET_DTYPE_I8:
  case BITNET_DTYPE_U8:
  case BITNET_DTYPE_BOOL: return 1;
  case BITNET_DTYPE_F16:
  case BITNET_DTYPE_BF16:
  case BITNET_DTYPE_I16:
  case BITNET_DTYPE_U16: return 2;
  case BITNET_DTYPE_F32:
  case BITNET_DTYPE_I32:
  case BITNET_DTYPE_U32: return 4;
  case BITNET_DTYPE_F64:
  case BITNET_DTYPE_I64:
  case BITNET_DTYPE_U64: return 8;
  default: return 0;
  }
}

int bitnet_dtype_is_valid(int32_t dtype) { return bitnet_dtype_size(dtype) != 0; }
