/*===- checksum.c - The integrity trailer of compiled models --------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * bitnet-compile ends every model file it links with a trailer holding the
 * XXH64 checksum (seed 0) of every byte before it (model_abi.h). XXH64 is
 * computed here from its published specification; the compiler computes the
 * same with LLVM's xxHash64, and the tests check that both agree.
 *
 *===----------------------------------------------------------------------===*/

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t read64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t read32(const unsigned char *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24;
}

static uint64_t round64(uint64_t acc, uint64_t input) {
  acc += input * P2;
  return rotl(acc, 31) * P1;
}

static uint64_t merge(uint64_t h, uint64_t v) {
  h ^= round64(0, v);
  return h * P1 + P4;
}

/* XXH64 over data fed in pieces whose sizes are multiples of 32 but for the
 * last. */
typedef struct {
  uint64_t v[4];
  uint64_t total;
} xxh64_state;

static void xxh64_init(xxh64_state *s) {
  s->v[0] = P1 + P2;
  s->v[1] = P2;
  s->v[2] = 0;
  s->v[3] = 0 - P1;
  s->total = 0;
}

/* Consumes the whole 32-byte stripes of [p, p + n); returns how many bytes
 * that was. */
static size_t xxh64_stripes(xxh64_state *s, const unsigned char *p, size_t n) {
  size_t done = 0;
  uint64_t v0 = s->v[0], v1 = s->v[1], v2 = s->v[2], v3 = s->v[3];
  for (; done + 32 <= n; done += 32) {
    v0 = round64(v0, read64(p + done));
    v1 = round64(v1, read64(p + done + 8));
    v2 = round64(v2, read64(p + done + 16));
    v3 = round64(v3, read64(p + done + 24));
  }
  s->v[0] = v0, s->v[1] = v1, s->v[2] = v2, s->v[3] = v3;
  s->total += done;
  return done;
}

/* The checksum, given the tail (fewer than 32 bytes) after the stripes. */
static uint64_t xxh64_finish(const xxh64_state *s, const unsigned char *p,
                             size_t n) {
  uint64_t h;
  if (s->total >= 32) {
    h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) +
        rotl(s->v[3], 18);
    for (int i = 0; i < 4; ++i)
      h = merge(h, s->v[i]);
  } else {
    h = P5;
  }
  h += s->total + n;
  for (; n >= 8; p += 8, n -= 8) {
    h ^= round64(0, read64(p));
    h = rotl(h, 27) * P1 + P4;
  }
  if (n >= 4) {
    h ^= read32(p) * P1;
    h = rotl(h, 23) * P2 + P3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; ++p, --n) {
    h ^= *p * P5;
    h = rotl(h, 11) * P1;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

uint64_t bitnet_xxh64(const void *data, size_t size) {
  xxh64_state s;
  xxh64_init(&s);
  size_t done = xxh64_stripes(&s, data, size);
  return xxh64_finish(&s, (const unsigned char *)data + done, size - done);
}

/* Reads exactly `size` bytes at `offset`; 0 on success. */
static int read_fully(int fd, void *buf, size_t size, off_t offset) {
  unsigned char *p = buf;
  while (size > 0) {
    ssize_t n = pread(fd, p, size, offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    size -= (size_t)n;
    offset += n;
  }
  return 0;
}

bitnet_status bitnet_model_verify(const bitnet_model *model) {
  BITNET_CHECK_ARG(model, "bitnet_model_verify");
  const char *path = model->path;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR,
                              "cannot verify model '%s': %s", path,
                              strerror(errno));
  struct stat st;
  bitnet_status status = BITNET_OK;
  unsigned char trailer[BITNET_MODEL_TRAILER_BYTES];
  if (fstat(fd, &st) != 0 || st.st_dev != model->file_dev ||
      st.st_ino != model->file_ino) {
    status = bitnet_status_make(
        BITNET_STATUS_FAILED_PRECONDITION,
        "cannot verify model '%s': the file was replaced since it was loaded",
        path);
  } else if (st.st_size < (off_t)sizeof(trailer) ||
             read_fully(fd, trailer, sizeof(trailer),
                        st.st_size - (off_t)sizeof(trailer)) != 0 ||
             memcmp(trailer, BITNET_MODEL_TRAILER_MAGIC, 8) != 0) {
    status = bitnet_status_make(
        BITNET_STATUS_UNAVAILABLE,
        "model '%s' carries no checksum (it was not linked by bitnet-compile, "
        "or was stripped)",
        path);
  }
  uint64_t covered = 0, expected = 0;
  if (status == BITNET_OK) {
    covered = read64(trailer + 8);
    expected = read64(trailer + 16);
    if (covered != (uint64_t)st.st_size - sizeof(trailer))
      status = bitnet_status_make(
          BITNET_STATUS_INVALID_MODEL,
          "model '%s' is damaged: its checksum covers %llu bytes, but %llu "
          "precede it",
          path, (unsigned long long)covered,
          (unsigned long long)(st.st_size - (off_t)sizeof(trailer)));
  }
  enum { CHUNK = 4 << 20 }; /* a multiple of 32 */
  unsigned char *buf = status == BITNET_OK ? malloc(CHUNK) : NULL;
  if (status == BITNET_OK && buf == NULL)
    status = bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "bitnet_model_verify: out of memory");
  if (status == BITNET_OK) {
    xxh64_state s;
    xxh64_init(&s);
    uint64_t offset = 0;
    size_t tail = 0;
    while (offset < covered) {
      size_t n = covered - offset < CHUNK ? (size_t)(covered - offset) : CHUNK;
      if (read_fully(fd, buf, n, (off_t)offset) != 0) {
        status = bitnet_status_make(BITNET_STATUS_IO_ERROR,
                                    "cannot read model '%s': %s", path,
                                    strerror(errno ? errno : EIO));
        break;
      }
      size_t done = xxh64_stripes(&s, buf, n);
      offset += n;
      tail = n - done; /* non-zero for the last piece only */
      if (tail)
        memmove(buf, buf + done, tail);
    }
    if (status == BITNET_OK) {
      uint64_t actual = xxh64_finish(&s, buf, tail);
      if (actual != expected)
        status = bitnet_status_make(
            BITNET_STATUS_INVALID_MODEL,
            "model '%s' is damaged: its checksum is %016llx, the file's bytes "
            "give %016llx",
            path, (unsigned long long)expected, (unsigned long long)actual);
    }
  }
  free(buf);
  close(fd);
  return status;
}
