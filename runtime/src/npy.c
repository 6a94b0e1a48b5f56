/*===- npy.c - Reading and writing .npy files -----------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Format: "\x93NUMPY", major, minor, header length (2 bytes little-endian in
 * version 1, 4 bytes in 2 and 3), then a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), } padded with
 * spaces and a newline, then the raw data.
 *
 *===----------------------------------------------------------------------===*/

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet_rt/npy.h"
#include "internal.h"

#define MAX_HEADER_BYTES (1 << 20)

static const struct {
  const char *descr; /* what we write */
  char kind;         /* numpy kind letter */
  int size;
  int32_t dtype;
} npy_types[] = {
    {"<f4", 'f', 4, BITNET_DTYPE_F32}, {"<f2", 'f', 2, BITNET_DTYPE_F16},
    {"<f8", 'f', 8, BITNET_DTYPE_F64}, {"|i1", 'i', 1, BITNET_DTYPE_I8},
    {"<i2", 'i', 2, BITNET_DTYPE_I16}, {"<i4", 'i', 4, BITNET_DTYPE_I32},
    {"<i8", 'i', 8, BITNET_DTYPE_I64}, {"|u1", 'u', 1, BITNET_DTYPE_U8},
    {"|b1", 'b', 1, BITNET_DTYPE_BOOL}, {"<u2", 'u', 2, BITNET_DTYPE_U16},
    {"<u4", 'u', 4, BITNET_DTYPE_U32}, {"<u8", 'u', 8, BITNET_DTYPE_U64},
};
#define NUM_NPY_TYPES ((int)(sizeof(npy_types) / sizeof(npy_types[0])))

const char *bitnet_npy_descr(int32_t dtype) {
  for (int i = 0; i < NUM_NPY_TYPES; ++i)
    if (npy_types[i].dtype == dtype)
      return npy_types[i].descr;
  return NULL;
}

/*--- A parser for the header dict -----------------------------------------*/

typedef struct parser {
  const char *p, *end;
} parser;

static void skip_space(parser *ps) {
  while (ps->p < ps->end && isspace((unsigned char)*ps->p))
    ps->p++;
}

static int accept(parser *ps, char ch) {
  skip_space(ps);
  if (ps->p < ps->end && *ps->p == ch) {
    ps->p++;
    return 1;
  }
  return 0;
}

/* A quoted string into buf; 0 if malformed or longer than buf. */
static int parse_string(parser *ps, char *buf, size_t size) {
  skip_space(ps);
  if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
    return 0;
  char quote = *ps->p++;
  size_t n = 0;
  while (ps->p < ps->end && *ps->p != quote) {
    if (n + 1 >= size)
      return 0;
    buf[n++] = *ps->p++;
  }
  if (ps->p >= ps->end)
    return 0;
  ps->p++;
  buf[n] = '\0';
  return 1;
}

static int parse_word(parser *ps, const char *word) {
  skip_space(ps);
  size_t len = strlen(word);
  if ((size_t)(ps->end - ps->p) >= len && memcmp(ps->p, word, len) == 0) {
    ps->p += len;
    return 1;
  }
  return 0;
}

/* (d0, d1, ...) with an optional trailing comma; -1 rank on error, -2 when
 * the rank is too large. */
static int parse_shape(parser *ps, int64_t *shape, int32_t *rank) {
  *rank = 0;
  if (!accept(ps, '('))
    return 0;
  for (;;) {
    if (accept(ps, ')'))
      return 1;
    skip_space(ps);
    if (ps->p >= ps->end || !isdigit((unsigned char)*ps->p))
      return 0;
    int64_t value = 0;
    while (ps->p < ps->end && isdigit((unsigned char)*ps->p)) {
      int digit = *ps->p++ - '0';
      if (value > (INT64_MAX - digit) / 10)
        return 0;
      value = value * 10 + digit;
    }
    if (ps->p < ps->end && *ps->p == 'L') /* Python 2 longs */
      ps->p++;
    if (*rank == BITNET_MAX_RANK) {
      *rank = -2;
      return 0;
    }
    shape[(*rank)++] = value;
    if (!accept(ps, ',')) {
      return accept(ps, ')');
    }
  }
}

static bitnet_status format_error(const char *path, const char *what) {
  return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                            "'%s' is not a valid .npy file: %s", path, what);
}

/* Maps a descr to a dtype; 0 with a message when unsupported. */
static bitnet_status parse_descr(const char *path, const char *descr,
                                 int32_t *dtype) {
  size_t len = strlen(descr);
  char order = len ? descr[0] : '?';
  if (len >= 3 && (order == '<' || order == '>' || order == '|' ||
                   order == '=')) {
    for (int i = 0; i < NUM_NPY_TYPES; ++i) {
      if (strcmp(descr + 1, npy_types[i].descr + 1) != 0)
        continue;
      if (order == '>' && npy_types[i].size > 1)
        return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                  "'%s' holds big-endian data ('%s'); only "
                                  "little-endian .npy files are supported",
                                  path, descr);
      *dtype = npy_types[i].dtype;
      return BITNET_OK;
    }
  }
  return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                            "'%s' has dtype '%s', which is not supported "
                            "(supported: <f4 <f2 <f8 |i1 <i2 <i4 <i8 |u1 |b1)",
                            path, descr);
}

static bitnet_status parse_header(const char *path, const char *text,
                                  size_t len, bitnet_npy_array *a) {
  parser ps = {text, text + len};
  int have_descr = 0, have_order = 0, have_shape = 0;
  if (!accept(&ps, '{'))
    return format_error(path, "the header is not a dict");
  while (!accept(&ps, '}')) {
    char key[32], descr[64];
    if (!parse_string(&ps, key, sizeof(key)) || !accept(&ps, ':'))
      return format_error(path, "malformed header dict");
    if (strcmp(key, "descr") == 0) {
      if (!parse_string(&ps, descr, sizeof(descr)))
        return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                  "'%s' has a structured or malformed dtype; "
                                  "only plain dtypes are supported",
                                  path);
      BITNET_RETURN_IF_ERROR(parse_descr(path, descr, &a->dtype));
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (parse_word(&ps, "True"))
        return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                  "'%s' is stored in Fortran order; only C "
                                  "order is supported (np.ascontiguousarray)",
                                  path);
      if (!parse_word(&ps, "False"))
        return format_error(path, "'fortran_order' is not True or False");
      have_order = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!parse_shape(&ps, a->shape, &a->rank)) {
        if (a->rank == -2)
          return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                    "'%s' has more than %d dimensions", path,
                                    BITNET_MAX_RANK);
        return format_error(path, "malformed 'shape'");
      }
      have_shape = 1;
    } else {
      return bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                "'%s' has an unknown header key '%s'", path,
                                key);
    }
    if (!accept(&ps, ',')) {
      if (!accept(&ps, '}'))
        return format_error(path, "malformed header dict");
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    return format_error(path, "the header lacks 'descr', 'fortran_order' or "
                              "'shape'");
  return BITNET_OK;
}

bitnet_status bitnet_npy_read(const char *path, bitnet_pool *pool,
                              bitnet_npy_array *out_array) {
  BITNET_CHECK_ARG(out_array, "bitnet_npy_read");
  memset(out_array, 0, sizeof(*out_array));
  BITNET_CHECK_ARG(path, "bitnet_npy_read");
  /* O_NONBLOCK: a FIFO or a device must be refused by the fstat check
   * below, not block the open waiting for a writer. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  if (f == NULL) {
    int err = errno;
    if (fd >= 0)
      close(fd);
    return bitnet_status_make(err == ENOENT ? BITNET_STATUS_NOT_FOUND
                              : err == EACCES ? BITNET_STATUS_PERMISSION_DENIED
                                              : BITNET_STATUS_IO_ERROR,
                              "cannot open '%s': %s", path, strerror(err));
  }
  bitnet_npy_array a;
  memset(&a, 0, sizeof(a));
  char *header = NULL;
  bitnet_status status = BITNET_OK;
  unsigned char prefix[12];
  struct stat st;
  int64_t header_len = 0, data_offset = 0;

  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    status = bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                "cannot read '%s': not a regular file", path);
    goto done;
  }
  if (fread(prefix, 1, 10, f) != 10 || memcmp(prefix, "\x93NUMPY", 6) != 0) {
    status = format_error(path, "it does not start with \\x93NUMPY");
    goto done;
  }
  if (prefix[6] == 1) {
    header_len = prefix[8] | (prefix[9] << 8);
    data_offset = 10 + header_len;
  } else if (prefix[6] == 2 || prefix[6] == 3) {
    if (fread(prefix + 10, 1, 2, f) != 2) {
      status = format_error(path, "the header is truncated");
      goto done;
    }
    header_len = (int64_t)prefix[8] | ((int64_t)prefix[9] << 8) |
                 ((int64_t)prefix[10] << 16) | ((int64_t)prefix[11] << 24);
    data_offset = 12 + header_len;
  } else {
    status = bitnet_status_make(BITNET_STATUS_INVALID_FORMAT,
                                "'%s' has .npy version %d.%d; versions 1.0, "
                                "2.0 and 3.0 are supported",
                                path, prefix[6], prefix[7]);
    goto done;
  }
  if (header_len > MAX_HEADER_BYTES || data_offset > (int64_t)st.st_size) {
    status = format_error(path, "the header is truncated or too long");
    goto done;
  }
  header = malloc((size_t)header_len + 1);
  if (header == NULL) {
    status = bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "bitnet_npy_read: out of memory");
    goto done;
  }
  if (fread(header, 1, (size_t)header_len, f) != (size_t)header_len) {
    status = format_error(path, "the header is truncated");
    goto done;
  }
  header[header_len] = '\0';
  status = parse_header(path, header, (size_t)header_len, &a);
  if (status != BITNET_OK)
    goto done;

  a.num_elements = 1;
  for (int32_t d = 0; d < a.rank; ++d) {
    if (!bitnet_mul_ok(a.num_elements, a.shape[d], &a.num_elements)) {
      status = format_error(path, "the shape is too large");
      goto done;
    }
  }
  if (!bitnet_mul_ok(a.num_elements, bitnet_dtype_size(a.dtype), &a.byte_size)) {
    status = format_error(path, "the shape is too large");
    goto done;
  }
  int64_t data_bytes = (int64_t)st.st_size - data_offset;
  if (data_bytes != a.byte_size) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_FORMAT,
        "'%s' holds %lld bytes of data, but its header (dtype %s, %lld "
        "elements) says %lld%s",
        path, (long long)data_bytes, bitnet_dtype_name(a.dtype),
        (long long)a.num_elements, (long long)a.byte_size,
        data_bytes < a.byte_size ? ": the file is truncated" : "");
    goto done;
  }
  if (pool != NULL) {
    status = bitnet_pool_allocate(pool, a.byte_size, 0, &a.data);
    if (status != BITNET_OK)
      goto done;
    bitnet_pool_retain(pool);
    a.pool = pool;
  } else {
    a.data = malloc(a.byte_size ? (size_t)a.byte_size : 1);
    if (a.data == NULL) {
      status = bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                  "bitnet_npy_read: cannot allocate %lld bytes",
                                  (long long)a.byte_size);
      goto done;
    }
  }
  if (fread(a.data, 1, (size_t)a.byte_size, f) != (size_t)a.byte_size) {
    status = bitnet_status_make(BITNET_STATUS_IO_ERROR,
                                "cannot read the data of '%s'", path);
    goto done;
  }

done:
  fclose(f);
  free(header);
  if (status != BITNET_OK) {
    bitnet_npy_array_free(&a);
    return status;
  }
  *out_array = a;
  return BITNET_OK;
}

void bitnet_npy_array_free(bitnet_npy_array *array) {
  if (array == NULL)
    return;
  if (array->pool != NULL) {
    bitnet_status_free(bitnet_pool_deallocate(array->pool, array->data));
    bitnet_pool_release(array->pool);
  } else {
    free(array->data);
  }
  memset(array, 0, sizeof(*array));
}

bitnet_status bitnet_npy_write(const char *path, int32_t dtype, int32_t rank,
                               const int64_t *shape, const void *data) {
  BITNET_CHECK_ARG(path, "bitnet_npy_write");
  const char *descr = bitnet_npy_descr(dtype);
  if (descr == NULL)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_npy_write: dtype %s has no .npy "
                              "equivalent",
                              bitnet_dtype_name(dtype));
  if (rank < 0 || rank > BITNET_MAX_RANK || (rank > 0 && shape == NULL))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_npy_write: bad rank %d or NULL shape",
                              (int)rank);
  int64_t elements = 1, bytes;
  for (int32_t d = 0; d < rank; ++d) {
    if (shape[d] < 0 || !bitnet_mul_ok(elements, shape[d], &elements))
      return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                "bitnet_npy_write: bad extent %lld",
                                (long long)shape[d]);
  }
  if (!bitnet_mul_ok(elements, bitnet_dtype_size(dtype), &bytes))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_npy_write: the array is too large");
  if (bytes > 0 && data == NULL)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_npy_write: 'data' must not be NULL");

  char header[512];
  int len = snprintf(header, sizeof(header),
                     "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
  for (int32_t d = 0; d < rank; ++d)
    len += snprintf(header + len, sizeof(header) - (size_t)len,
                    rank == 1 ? "%lld," : d ? ", %lld" : "%lld",
                    (long long)shape[d]);
  len += snprintf(header + len, sizeof(header) - (size_t)len, "), }");
  /* Pads so that the data starts at a multiple of 64 bytes. */
  int total = 10 + len + 1;
  int padded = (total + 63) / 64 * 64;
  memset(header + len, ' ', (size_t)(padded - total));
  len += padded - total;
  header[len++] = '\n';

  bitnet_out_file out;
  FILE *f = bitnet_out_file_open(&out, path);
  if (f == NULL)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR, "cannot write '%s': %s",
                              path, strerror(errno));
  unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              (unsigned char)(len & 0xff),
                              (unsigned char)(len >> 8)};
  int ok = fwrite(prefix, 1, 10, f) == 10 &&
           fwrite(header, 1, (size_t)len, f) == (size_t)len &&
           (bytes == 0 || fwrite(data, 1, (size_t)bytes, f) == (size_t)bytes);
  if (!bitnet_out_file_close(&out, ok))
    return bitnet_status_make(BITNET_STATUS_IO_ERROR,
                              "cannot write '%s': %s", path,
                              strerror(errno ? errno : EIO));
  return BITNET_OK;
}
