/*===- out_file.c - Output files that appear whole or not at all ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

FILE *bitnet_out_file_open(bitnet_out_file *out, const char *path) {
  memset(out, 0, sizeof(*out));
  out->path = path;
  size_t len = strlen(path);
  out->tmp = malloc(len + 16);
  if (out->tmp == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  /* Beside the destination, so that the rename stays in one file system. */
  memcpy(out->tmp, path, len);
  memcpy(out->tmp + len, ".tmp.XXXXXX", 12);
  int fd = mkstemp(out->tmp);
  if (fd < 0) {
    int err = errno;
    free(out->tmp);
    out->tmp = NULL;
    errno = err;
    return NULL;
  }
  /* mkstemp makes the file 0600; give it what fopen would have. */
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask);
  out->file = fdopen(fd, "wb");
  if (out->file == NULL) {
    int err = errno;
    close(fd);
    unlink(out->tmp);
    free(out->tmp);
    out->tmp = NULL;
    errno = err;
  }
  return out->file;
}

int bitnet_out_file_close(bitnet_out_file *out, int ok) {
  if (out->file == NULL)
    return 0;
  int failed = ferror(out->file);
  if (fclose(out->file) != 0)
    failed = 1;
  out->file = NULL;
  int err = failed ? (errno ? errno : EIO) : 0;
  if (ok && !failed && rename(out->tmp, out->path) != 0) {
    failed = 1;
    err = errno;
  }
  if (!ok || failed)
    unlink(out->tmp);
  free(out->tmp);
  out->tmp = NULL;
  errno = err;
  return ok && !failed;
}
