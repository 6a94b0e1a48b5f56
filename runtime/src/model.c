/*===- model.c - Loading and describing compiled models -------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include <dlfcn.h>
#include <link.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) /* as in the kernel's asm/hwcap.h */
#endif
#endif

#include "model_internal.h"

/* The size of a transparent huge page on x86-64 and AArch64 (4 KiB base
 * pages). */
#define BITNET_HUGE_PAGE ((uintptr_t)2 << 20)

/* glibc serialises dlopen and dlclose with a lock that ThreadSanitizer does
 * not see, so it reports their bookkeeping as racing; loading is rare, so a
 * lock of our own costs nothing and keeps the tools quiet. */
static pthread_mutex_t dl_mutex = PTHREAD_MUTEX_INITIALIZER;

int bitnet_object_holds(const bitnet_object_map *map, const void *p,
                        int64_t bytes, unsigned flags) {
  uintptr_t begin = (uintptr_t)p;
  if (bytes < 0 || begin + (uint64_t)bytes < begin)
    return 0;
  for (int i = 0; i < map->count; ++i)
    if ((map->segments[i].flags & flags) == flags &&
        begin >= map->segments[i].begin &&
        begin + (uint64_t)bytes <= map->segments[i].end)
      return 1;
  return 0;
}

int bitnet_object_holds_string(const bitnet_object_map *map, const char *s) {
  uintptr_t begin = (uintptr_t)s;
  for (int i = 0; i < map->count; ++i)
    if ((map->segments[i].flags & PF_R) && begin >= map->segments[i].begin &&
        begin < map->segments[i].end) {
      size_t room = (size_t)(map->segments[i].end - begin);
      return strnlen(s, room) < room;
    }
  return 0;
}

typedef struct {
  const struct link_map *object;
  bitnet_object_map *map;
} find_segments_arg;

static int find_segments(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  find_segments_arg *arg = data;
  if (info->dlpi_addr != arg->object->l_addr || info->dlpi_name == NULL ||
      strcmp(info->dlpi_name, arg->object->l_name) != 0)
    return 0;
  bitnet_object_map *map = arg->map;
  for (int i = 0; i < info->dlpi_phnum && map->count < BITNET_MAX_SEGMENTS;
       ++i) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
      continue;
    map->segments[map->count].begin = info->dlpi_addr + ph->p_vaddr;
    map->segments[map->count].end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    map->segments[map->count].flags = ph->p_flags;
    map->segments[map->count].offset = ph->p_offset;
    map->segments[map->count].file_end =
        info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
    ++map->count;
  }
  return 1;
}

/* The segments of the object dlopen() gave `handle` for. */
static bitnet_status map_object(const char *path, void *handle,
                                bitnet_object_map *map) {
  memset(map, 0, sizeof(*map));
  struct link_map *object = NULL;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &object) != 0 || object == NULL)
    return bitnet_status_make(BITNET_STATUS_INTERNAL,
                              "model '%s': cannot find its loaded segments",
                              path);
  find_segments_arg arg = {object, map};
  dl_iterate_phdr(find_segments, &arg);
  if (map->count == 0)
    return bitnet_status_make(BITNET_STATUS_INTERNAL,
                              "model '%s': cannot find its loaded segments",
                              path);
  return BITNET_OK;
}

/* Whether the kernel offers transparent huge pages to madvise() callers. */
static int huge_pages_enabled(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == NULL)
    return 0;
  char line[128] = {0};
  int ok = fgets(line, sizeof(line), f) != NULL && strstr(line, "[never]") == NULL;
  fclose(f);
  return ok;
}

/* The whole 2 MiB pages inside segment `i`'s bytes from the file, when it
 * is read-only (the weights) and holds one at least: [*begin, *end). The
 * pages at its edges hold other segments' bytes too and stay as they are. */
static int read_only_huge_pages(const bitnet_object_map *map, int i,
                                uintptr_t *begin, uintptr_t *end) {
  if ((map->segments[i].flags & (PF_R | PF_W | PF_X)) != PF_R)
    return 0;
  *begin = (map->segments[i].begin + BITNET_HUGE_PAGE - 1) &
           ~(BITNET_HUGE_PAGE - 1);
  *end = map->segments[i].file_end & ~(BITNET_HUGE_PAGE - 1);
  return *end > *begin;
}

/* Asks for 2 MiB pages under the whole 2 MiB pages of the read-only
 * segments (the weights). bitnet-compile aligns the segments to 2 MiB, so
 * dlopen() maps them at offsets congruent to the file's: the kernel then
 * maps the page cache's 2 MiB folios of the file with one entry each, and
 * with this advice reads the pages not yet cached in 2 MiB folios. The
 * weights stay the file's pages, shared with every process that maps it.
 * Only advice: a kernel without transparent huge pages for files keeps
 * 4 KiB pages, and a refusal changes nothing. */
static void advise_huge_pages(const bitnet_object_map *map) {
  if (!huge_pages_enabled())
    return;
  uintptr_t begin, end;
  for (int i = 0; i < map->count; ++i)
    if (read_only_huge_pages(map, i, &begin, &end))
      (void)madvise((void *)begin, (size_t)(end - begin), MADV_HUGEPAGE);
}

/* INVALID_MODEL: the descriptor's `what` points outside the model. */
static bitnet_status outside(const char *path, const char *what) {
  return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                            "model '%s': its descriptor's %s points outside "
                            "the model (a damaged file?)",
                            path, what);
}

/* Checks that every pointer of the descriptor (strings, tables, shapes, run
 * functions) points into the model's own segments, and that its strings end
 * there: a damaged descriptor must be refused, not read through. */
static bitnet_status check_pointers(const bitnet_model *model,
                                    const bitnet_object_map *map) {
  const bitnet_model_info *info = model->info;
  const char *path = model->path;
  if (!bitnet_object_holds(map, info, sizeof(*info), PF_R))
    return outside(path, "table");
  if (!bitnet_object_holds(map, (const void *)(uintptr_t)model->run, 1, PF_X))
    return outside(path, "run function");
  const char *strings[] = {info->name, info->producer, info->target,
                           info->cpu_features};
  for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); ++i)
    if (strings[i] && !bitnet_object_holds_string(map, strings[i]))
      return outside(path, "name, producer, target or CPU features");
  for (int side = 0; side < 2; ++side) {
    int32_t count = side ? info->num_outputs : info->num_inputs;
    const bitnet_tensor_info *table = side ? info->outputs : info->inputs;
    if (count <= 0) /* a negative count is refused after */
      continue;
    if (!bitnet_object_holds(map, table, (int64_t)count * sizeof(*table),
                             PF_R))
      return outside(path, side ? "output table" : "input table");
    for (int32_t i = 0; i < count; ++i) {
      const bitnet_tensor_info *t = &table[i];
      if (t->name && !bitnet_object_holds_string(map, t->name))
        return outside(path, side ? "output name" : "input name");
      if (t->rank > 0 && t->rank <= BITNET_MAX_RANK && t->shape &&
          !bitnet_object_holds(map, t->shape,
                               (int64_t)t->rank * sizeof(int64_t), PF_R))
        return outside(path, side ? "output shape" : "input shape");
    }
  }
  if (info->num_metadata > 0) {
    if (!bitnet_object_holds(map, info->metadata,
                             2 * (int64_t)info->num_metadata * sizeof(char *),
                             PF_R))
      return outside(path, "metadata table");
    for (int32_t i = 0; i < 2 * info->num_metadata; ++i)
      if (info->metadata[i] &&
          !bitnet_object_holds_string(map, info->metadata[i]))
        return outside(path, "metadata");
  }
  if (info->num_variants > 0) {
    if (!bitnet_object_holds(map, info->variants,
                             (int64_t)info->num_variants *
                                 sizeof(*info->variants),
                             PF_R))
      return outside(path, "variant table");
    for (int32_t i = 0; i < info->num_variants; ++i) {
      const bitnet_model_variant *v = &info->variants[i];
      if ((v->name && !bitnet_object_holds_string(map, v->name)) ||
          (v->cpu_features &&
           !bitnet_object_holds_string(map, v->cpu_features)) ||
          (v->run && !bitnet_object_holds(map, (const void *)(uintptr_t)v->run,
                                          1, PF_X)))
        return outside(path, "variant");
    }
  }
  if (info->num_entries > 0) {
    if (!bitnet_object_holds(map, info->entries,
                             (int64_t)info->num_entries *
                                 sizeof(*info->entries),
                             PF_R))
      return outside(path, "entry table");
    for (int32_t i = 0; i < info->num_entries; ++i) {
      const bitnet_model_entry *e = &info->entries[i];
      if ((e->name && !bitnet_object_holds_string(map, e->name)) ||
          (e->info && !bitnet_object_holds(map, e->info, sizeof(*e->info),
                                           PF_R)) ||
          (e->run && !bitnet_object_holds(map, (const void *)(uintptr_t)e->run,
                                          1, PF_X)))
        return outside(path, "entry");
    }
  }
  return BITNET_OK;
}

/* Validates one tensor entry and computes its sizes. */
static bitnet_status check_tensor(const char *path, const char *kind,
                                  int32_t index, const bitnet_tensor_info *t,
                                  bitnet_tensor_desc *desc) {
  if (t->name == NULL)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d has no name", path, kind,
                              (int)index);
  if (!bitnet_dtype_is_valid(t->dtype))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') has unknown dtype %d",
                              path, kind, (int)index, t->name, (int)t->dtype);
  if (t->rank < 0 || t->rank > BITNET_MAX_RANK)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "model '%s': %s %d ('%s') has rank %d, expected 0 to %d", path, kind,
        (int)index, t->name, (int)t->rank, BITNET_MAX_RANK);
  if (t->rank > 0 && t->shape == NULL)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') has rank %d but no shape",
                              path, kind, (int)index, t->name, (int)t->rank);
  int64_t elements = 1;
  for (int32_t d = 0; d < t->rank; ++d) {
    if (t->shape[d] < 0)
      return bitnet_status_make(
          BITNET_STATUS_INVALID_MODEL,
          "model '%s': %s %d ('%s') has negative extent %lld in dimension %d",
          path, kind, (int)index, t->name, (long long)t->shape[d], (int)d);
    if (!bitnet_mul_ok(elements, t->shape[d], &elements))
      return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "model '%s': %s %d ('%s') is too large", path,
                                kind, (int)index, t->name);
  }
  int64_t bytes;
  if (!bitnet_mul_ok(elements, bitnet_dtype_size(t->dtype), &bytes))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') is too large", path,
                              kind, (int)index, t->name);
  if (t->flags & ~(BITNET_TENSOR_STATE | BITNET_TENSOR_RANGE))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') has unknown flags 0x%x",
                              path, kind, (int)index, t->name,
                              (unsigned)t->flags);
  if ((t->flags & BITNET_TENSOR_STATE) && strcmp(kind, "input") != 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') is marked as state, "
                              "which only inputs can be",
                              path, kind, (int)index, t->name);
  /* A state input is read before it is written (a KV cache holds earlier
     steps' rows); one of no elements means a model whose code indexes
     memory that is not there. */
  if ((t->flags & BITNET_TENSOR_STATE) && elements == 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s': %s %d ('%s') is state with no "
                              "elements",
                              path, kind, (int)index, t->name);
  if (t->flags & BITNET_TENSOR_RANGE) {
    int integer = t->dtype == BITNET_DTYPE_I8 || t->dtype == BITNET_DTYPE_I16 ||
                  t->dtype == BITNET_DTYPE_I32 || t->dtype == BITNET_DTYPE_I64;
    if (strcmp(kind, "input") != 0 || !integer || t->min_value > t->max_value)
      return bitnet_status_make(
          BITNET_STATUS_INVALID_MODEL,
          "model '%s': %s %d ('%s') declares the value range [%lld, %lld]; "
          "a range needs a signed integer input and min <= max",
          path, kind, (int)index, t->name, (long long)t->min_value,
          (long long)t->max_value);
  }
  desc->name = t->name;
  desc->dtype = t->dtype;
  desc->rank = t->rank;
  desc->shape = t->shape;
  desc->num_elements = elements;
  desc->byte_size = bytes;
  desc->flags = t->flags;
  desc->min_value = (t->flags & BITNET_TENSOR_RANGE) ? t->min_value : 0;
  desc->max_value = (t->flags & BITNET_TENSOR_RANGE) ? t->max_value : 0;
  return BITNET_OK;
}

/* Whether this machine has the CPU feature `name` (a GCC
 * __builtin_cpu_supports name on x86, a hwcap on AArch64 Linux); -1 for a
 * name this runtime does not know. */
static int cpu_has(const char *name, size_t len) {
#define BITNET_CPU_FEATURE(str)                                                \
  if (len == sizeof(str) - 1 && strncmp(name, str, len) == 0)                  \
    return __builtin_cpu_supports(str) != 0;
#if defined(__x86_64__) || defined(__i386__)
  BITNET_CPU_FEATURE("sse4.1")
  BITNET_CPU_FEATURE("sse4.2")
  BITNET_CPU_FEATURE("avx")
  BITNET_CPU_FEATURE("avx2")
  BITNET_CPU_FEATURE("fma")
  BITNET_CPU_FEATURE("f16c")
  BITNET_CPU_FEATURE("bmi")
  BITNET_CPU_FEATURE("bmi2")
  BITNET_CPU_FEATURE("avx512f")
  BITNET_CPU_FEATURE("avx512bw")
  BITNET_CPU_FEATURE("avx512vl")
  BITNET_CPU_FEATURE("avx512dq")
  BITNET_CPU_FEATURE("avx512cd")
  BITNET_CPU_FEATURE("avx512vnni")
  BITNET_CPU_FEATURE("avx512vbmi")
  BITNET_CPU_FEATURE("avx512vbmi2")
  BITNET_CPU_FEATURE("avx512bf16")
  BITNET_CPU_FEATURE("avx512fp16")
  BITNET_CPU_FEATURE("avxvnni")
  BITNET_CPU_FEATURE("amx-tile")
  BITNET_CPU_FEATURE("amx-int8")
  BITNET_CPU_FEATURE("amx-bf16")
#endif
#undef BITNET_CPU_FEATURE
#if defined(__aarch64__) && defined(__linux__)
  /* The dot product extension: sdot and udot. */
  if (len == sizeof("dotprod") - 1 && strncmp(name, "dotprod", len) == 0)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
  return -1;
}

/* Refuses a model whose code needs CPU features this machine lacks: running
 * it would die on an illegal instruction. */
static bitnet_status check_cpu_features(const char *path,
                                        const char *features) {
  if (features == NULL)
    return BITNET_OK;
  char missing[512] = "";
  size_t used = 0;
  const char *p = features;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      int has = cpu_has(p, len);
      if (has < 0)
        return bitnet_status_make(
            BITNET_STATUS_INCOMPATIBLE,
            "model '%s' needs the CPU feature '%.*s', which this runtime "
            "cannot check",
            path, (int)len, p);
      if (!has && used + len + 3 < sizeof(missing))
        used += (size_t)snprintf(missing + used, sizeof(missing) - used,
                                 "%s%.*s", used ? ", " : "", (int)len, p);
    }
    p += len;
    if (*p == ',')
      ++p;
  }
  if (used > 0)
    return bitnet_status_make(
        BITNET_STATUS_INCOMPATIBLE,
        "model '%s' was compiled for CPU features this machine lacks (%s); "
        "compile it for this machine (bitnet-compile --cpu=native)",
        path, missing);
  return BITNET_OK;
}

static bitnet_status check_workspace(const char *path, int64_t bytes,
                                     int64_t align) {
  if (bytes < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares a negative workspace (%lld "
                              "bytes)",
                              path, (long long)bytes);
  int align_ok = align > 0 && (align & (align - 1)) == 0 &&
                 align <= ((int64_t)1 << 20);
  if (!align_ok && !(align == 0 && bytes == 0))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares workspace alignment %lld; "
                              "expected a power of two up to 1 MiB",
                              path, (long long)align);
  return BITNET_OK;
}

static bitnet_status check_info(bitnet_model *model,
                                const bitnet_object_map *map) {
  const bitnet_model_info *info = model->info;
  const char *path = model->path;
  if (!bitnet_object_holds(map, info, sizeof(*info), PF_R))
    return outside(path, "table");
  if (info->magic != BITNET_MODEL_MAGIC)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "model '%s' is not a bitnet model: its descriptor's magic is 0x%08x, "
        "expected 0x%08x (\"BTNM\")",
        path, (unsigned)info->magic, (unsigned)BITNET_MODEL_MAGIC);
  if (info->abi_version != BITNET_MODEL_ABI_VERSION)
    return bitnet_status_make(
        BITNET_STATUS_INCOMPATIBLE,
        "model '%s' was built for model ABI version %u, but this runtime "
        "supports version %u: recompile the model with a matching "
        "bitnet-compile",
        path, (unsigned)info->abi_version, (unsigned)BITNET_MODEL_ABI_VERSION);
  BITNET_RETURN_IF_ERROR(check_pointers(model, map));
  if (info->num_inputs < 0 || info->num_outputs < 0)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "model '%s' declares %d inputs and %d outputs; counts must be >= 0",
        path, (int)info->num_inputs, (int)info->num_outputs);
  if (info->num_outputs == 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares no outputs", path);
  if ((info->num_inputs > 0 && info->inputs == NULL) ||
      (info->num_outputs > 0 && info->outputs == NULL))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares tensors but no table of them",
                              path);
  bitnet_status status = check_workspace(path, info->workspace_bytes,
                                         info->workspace_alignment);
  if (status != BITNET_OK)
    return status;
  if (info->stack_bytes < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares %lld bytes of stack; it "
                              "must be >= 0",
                              path, (long long)info->stack_bytes);
  if (info->num_metadata < 0 ||
      (info->num_metadata > 0 && info->metadata == NULL))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares %d metadata entries but no "
                              "table of them",
                              path, (int)info->num_metadata);
  for (int32_t i = 0; i < 2 * info->num_metadata; ++i)
    if (info->metadata[i] == NULL)
      return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "model '%s' has a NULL metadata string", path);
  if (info->num_variants < 0 || (info->num_variants > 0 && !info->variants))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares %d variants but no table "
                              "of them",
                              path, (int)info->num_variants);
  if (info->num_entries < 0 || (info->num_entries > 0 && !info->entries))
    return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                              "model '%s' declares %d entries but no table "
                              "of them",
                              path, (int)info->num_entries);
  for (int32_t i = 0; i < info->num_entries; ++i) {
    const bitnet_model_entry *e = &info->entries[i];
    if (e->name == NULL || e->info == NULL || e->run == NULL)
      return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "model '%s' declares a malformed entry %d",
                                path, (int)i);
  }
  /* The best variant this machine runs, else the baseline build. */
  model->run_fn = model->run;
  model->workspace_bytes = info->workspace_bytes;
  model->workspace_alignment = info->workspace_alignment;
  model->variant = NULL;
  for (int32_t i = 0; i < info->num_variants; ++i) {
    const bitnet_model_variant *v = &info->variants[i];
    if (v->run == NULL || !v->name ||
        check_workspace(path, v->workspace_bytes, v->workspace_alignment))
      return bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "model '%s' declares a malformed variant %d",
                                path, (int)i);
  }
  for (int32_t i = 0; i < info->num_variants; ++i) {
    const bitnet_model_variant *v = &info->variants[i];
    bitnet_status fits = check_cpu_features(path, v->cpu_features);
    if (fits != BITNET_OK) {
      bitnet_status_free(fits);
      continue;
    }
    model->run_fn = v->run;
    model->workspace_bytes = v->workspace_bytes;
    model->workspace_alignment = v->workspace_alignment;
    model->variant = v->name;
    return BITNET_OK;
  }
  return check_cpu_features(path, info->cpu_features);
}

static bitnet_status check_file(const char *path, struct stat *out_st) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int err = errno;
    return bitnet_status_make(err == ENOENT || err == ENOTDIR
                                  ? BITNET_STATUS_NOT_FOUND
                                  : BITNET_STATUS_IO_ERROR,
                              "cannot open model '%s': %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode))
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "cannot open model '%s': not a regular file",
                              path);
  if (access(path, R_OK) != 0) {
    int err = errno;
    return bitnet_status_make(BITNET_STATUS_PERMISSION_DENIED,
                              "cannot open model '%s': %s", path,
                              strerror(err));
  }
  *out_st = st;
  return BITNET_OK;
}

#if UINTPTR_MAX == 0xffffffffffffffffu
#define BITNET_ELF_CLASS ELFCLASS64
typedef Elf64_Ehdr bitnet_elf_ehdr;
typedef Elf64_Phdr bitnet_elf_phdr;
#else
#define BITNET_ELF_CLASS ELFCLASS32
typedef Elf32_Ehdr bitnet_elf_ehdr;
typedef Elf32_Phdr bitnet_elf_phdr;
#endif

#if defined(__x86_64__)
#define BITNET_ELF_MACHINE EM_X86_64
#define BITNET_ELF_MACHINE_NAME "x86-64"
#elif defined(__aarch64__)
#define BITNET_ELF_MACHINE EM_AARCH64
#define BITNET_ELF_MACHINE_NAME "AArch64"
#elif defined(__i386__)
#define BITNET_ELF_MACHINE EM_386
#define BITNET_ELF_MACHINE_NAME "x86"
#elif defined(__arm__)
#define BITNET_ELF_MACHINE EM_ARM
#define BITNET_ELF_MACHINE_NAME "ARM"
#endif

/* The name of ELF machine `m`, for messages. */
static const char *elf_machine_name(unsigned m) {
  switch (m) {
  case EM_X86_64:
    return "x86-64";
  case EM_AARCH64:
    return "AArch64";
  case EM_386:
    return "x86";
  case EM_ARM:
    return "ARM";
  case EM_RISCV:
    return "RISC-V";
  case EM_PPC64:
    return "PowerPC 64";
  default:
    return "another machine";
  }
}

/* Reads exactly `size` bytes at `offset`; 0 when the file is shorter. */
static int read_at(int fd, void *buf, size_t size, off_t offset) {
  char *p = buf;
  while (size > 0) {
    ssize_t n = pread(fd, p, size, offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 0;
    p += n;
    size -= (size_t)n;
    offset += n;
  }
  return 1;
}

/* Checks, before dlopen maps it, that `path` (of `file_size` bytes) is an
 * ELF shared object for this machine whose loadable segments all lie within
 * the file: the dynamic loader maps a truncated file without complaint, and
 * the process then dies of SIGBUS on the first page past its end. */
static bitnet_status check_elf(const char *path, uint64_t file_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "cannot open model '%s': %s", path,
                              strerror(err));
  }
  bitnet_status status = BITNET_OK;
  bitnet_elf_ehdr eh;
  if (!read_at(fd, &eh, sizeof(eh), 0) ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "cannot load model '%s' as a shared object: it is not an ELF file "
        "(%" PRIu64 " bytes)",
        path, file_size);
  } else if (eh.e_ident[EI_CLASS] != BITNET_ELF_CLASS) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "cannot load model '%s': it is a %d-bit ELF file, this process is "
        "%d-bit",
        path, eh.e_ident[EI_CLASS] == ELFCLASS64 ? 64 : 32,
        (int)(sizeof(void *) * 8));
  }
#ifdef BITNET_ELF_MACHINE
  else if (eh.e_machine != BITNET_ELF_MACHINE) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "cannot load model '%s': it was compiled for %s (ELF machine %u), "
        "this machine is %s: compile it with --target for this machine",
        path, elf_machine_name(eh.e_machine), (unsigned)eh.e_machine,
        BITNET_ELF_MACHINE_NAME);
  }
#endif
  else if (eh.e_type != ET_DYN) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "cannot load model '%s' as a shared object: it is an ELF file of "
        "type %u, not a shared object (build it with --emit=so)",
        path, (unsigned)eh.e_type);
  } else if (eh.e_phentsize != sizeof(bitnet_elf_phdr) || eh.e_phnum == 0 ||
             eh.e_phoff > file_size ||
             (uint64_t)eh.e_phnum * sizeof(bitnet_elf_phdr) >
                 file_size - eh.e_phoff) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "cannot load model '%s': its program headers lie outside the file "
        "(%" PRIu64 " bytes): the file is damaged or truncated",
        path, file_size);
  }
  for (unsigned i = 0; status == BITNET_OK && i < eh.e_phnum; ++i) {
    bitnet_elf_phdr ph;
    if (!read_at(fd, &ph, sizeof(ph),
                 (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph)))) {
      status = bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                  "cannot load model '%s': cannot read its "
                                  "program header %u",
                                  path, i);
      break;
    }
    if (ph.p_type != PT_LOAD && ph.p_type != PT_DYNAMIC)
      continue;
    uint64_t end = (uint64_t)ph.p_offset + ph.p_filesz;
    if (end < ph.p_offset || end > file_size)
      status = bitnet_status_make(
          BITNET_STATUS_INVALID_MODEL,
          "cannot load model '%s': the file is truncated: it has %" PRIu64
          " bytes, but its segment %u ends at byte %" PRIu64
          " (was it copied or downloaded completely?)",
          path, file_size, i, end);
  }
  close(fd);
  return status;
}

/* Fills model->descs from the validated descriptor's tables. */
static bitnet_status describe_tensors(bitnet_model *model, const char *path) {
  const bitnet_model_info *info = model->info;
  int64_t count = (int64_t)info->num_inputs + info->num_outputs;
  model->descs = calloc(count > 0 ? (size_t)count : 1, sizeof(*model->descs));
  if (model->descs == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_model_load: out of memory");
  bitnet_status status = BITNET_OK;
  for (int32_t i = 0; status == BITNET_OK && i < info->num_inputs; ++i)
    status = check_tensor(path, "input", i, &info->inputs[i], &model->descs[i]);
  for (int32_t i = 0; status == BITNET_OK && i < info->num_outputs; ++i)
    status = check_tensor(path, "output", i, &info->outputs[i],
                          &model->descs[info->num_inputs + i]);
  return status;
}

static void model_destroy(bitnet_model *model) {
  bitnet_gpu_model_destroy(model->gpu);
  bitnet_model_release(model->parent);
  if (model->handle) {
    pthread_mutex_lock(&dl_mutex);
    dlclose(model->handle);
    pthread_mutex_unlock(&dl_mutex);
  }
  free(model->descs);
  free(model->path);
  free(model);
}

bitnet_status bitnet_model_load(const char *path, bitnet_model **out_model) {
  BITNET_CHECK_ARG(out_model, "bitnet_model_load");
  *out_model = NULL;
  BITNET_CHECK_ARG(path, "bitnet_model_load");
  struct stat st;
  memset(&st, 0, sizeof(st));
  BITNET_RETURN_IF_ERROR(check_file(path, &st));
  BITNET_RETURN_IF_ERROR(check_elf(path, (uint64_t)st.st_size));

  bitnet_model *model = calloc(1, sizeof(*model));
  /* dlopen() searches the library path for a name without '/'. */
  size_t len = strlen(path);
  int needs_prefix = strchr(path, '/') == NULL;
  char *dl_path = malloc(len + 3);
  if (model == NULL || dl_path == NULL) {
    free(model);
    free(dl_path);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_model_load: out of memory");
  }
  memcpy(dl_path, needs_prefix ? "./" : "", needs_prefix ? 2 : 0);
  memcpy(dl_path + (needs_prefix ? 2 : 0), path, len + 1);
  atomic_init(&model->refs, 1);
  model->path = dl_path;
  model->file_dev = st.st_dev;
  model->file_ino = st.st_ino;

  pthread_mutex_lock(&dl_mutex);
  dlerror();
  model->handle = dlopen(dl_path, RTLD_NOW | RTLD_LOCAL);
  bitnet_status status = BITNET_OK;
  if (model->handle == NULL) {
    const char *err = dlerror();
    status = bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "cannot load model '%s' as a shared object: %s",
                                path, err ? err : "unknown dlopen error");
  }
  pthread_mutex_unlock(&dl_mutex);
  if (status != BITNET_OK) {
    model_destroy(model);
    return status;
  }
  model->info = dlsym(model->handle, BITNET_MODEL_INFO_SYMBOL);
  model->run = (bitnet_model_run_fn)dlsym(model->handle, BITNET_MODEL_RUN_SYMBOL);
  if (model->info == NULL || model->run == NULL) {
    status = bitnet_status_make(
        BITNET_STATUS_INVALID_MODEL,
        "model '%s' does not export '%s': it is not a model compiled by "
        "bitnet-compile",
        path,
        model->info == NULL ? BITNET_MODEL_INFO_SYMBOL : BITNET_MODEL_RUN_SYMBOL);
    model_destroy(model);
    return status;
  }
  bitnet_object_map map;
  status = map_object(path, model->handle, &map);
  if (status == BITNET_OK)
    status = check_info(model, &map);
  if (status == BITNET_OK)
    advise_huge_pages(&map);
  const bitnet_model_info *info = model->info;
  if (status == BITNET_OK)
    status = describe_tensors(model, path);
  if (status == BITNET_OK && info->gpu != NULL) {
    status = bitnet_gpu_check_program(path, info->gpu, &map, model->descs,
                                      info->num_inputs + info->num_outputs);
    if (status == BITNET_OK)
      status = bitnet_gpu_model_create(path, info->gpu, &model->gpu);
  }
  if (status != BITNET_OK) {
    model_destroy(model);
    return status;
  }
  *out_model = model;
  return BITNET_OK;
}

void bitnet_model_retain(bitnet_model *model) {
  if (model)
    atomic_fetch_add_explicit(&model->refs, 1, memory_order_relaxed);
}

void bitnet_model_release(bitnet_model *model) {
  if (model &&
      atomic_fetch_sub_explicit(&model->refs, 1, memory_order_acq_rel) == 1)
    model_destroy(model);
}

const bitnet_model_info *bitnet_model_get_info(const bitnet_model *model) {
  return model ? model->info : NULL;
}

int32_t bitnet_model_num_entries(const bitnet_model *model) {
  return model ? model->info->num_entries : 0;
}

const char *bitnet_model_entry_name(const bitnet_model *model, int32_t index) {
  if (model == NULL || index < 0 || index >= model->info->num_entries)
    return NULL;
  return model->info->entries[index].name;
}

const char *bitnet_model_opened_as(const bitnet_model *model) {
  return model ? model->entry : NULL;
}

bitnet_status bitnet_model_open_entry(bitnet_model *model, const char *name,
                                      bitnet_model **out_entry) {
  BITNET_CHECK_ARG(out_entry, "bitnet_model_open_entry");
  *out_entry = NULL;
  BITNET_CHECK_ARG(model, "bitnet_model_open_entry");
  BITNET_CHECK_ARG(name, "bitnet_model_open_entry");
  const bitnet_model_info *info = model->info;
  const bitnet_model_entry *found = NULL;
  for (int32_t i = 0; i < info->num_entries && !found; ++i)
    if (strcmp(info->entries[i].name, name) == 0)
      found = &info->entries[i];
  if (found == NULL) {
    char list[512] = "";
    size_t used = 0;
    for (int32_t i = 0; i < info->num_entries && used < sizeof(list); ++i)
      used += (size_t)snprintf(list + used, sizeof(list) - used, "%s'%s'",
                               i ? ", " : "", info->entries[i].name);
    return bitnet_status_make(
        BITNET_STATUS_NOT_FOUND,
        "model '%s' has no entry named '%s' (%s%s)", model->path, name,
        info->num_entries ? "it has: " : "it has none besides its main one; "
                                         "bitnet-compile --prefill-tokens "
                                         "adds 'prefill'",
        list);
  }
  bitnet_model *entry = calloc(1, sizeof(*entry));
  char *path = strdup(model->path);
  if (entry == NULL || path == NULL) {
    free(entry);
    free(path);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_model_open_entry: out of memory");
  }
  atomic_init(&entry->refs, 1);
  entry->path = path;
  entry->file_dev = model->file_dev;
  entry->file_ino = model->file_ino;
  entry->info = found->info;
  entry->run = found->run;
  entry->entry = found->name;
  bitnet_model_retain(model);
  entry->parent = model;
  bitnet_object_map map;
  bitnet_status status = map_object(path, model->handle, &map);
  if (status == BITNET_OK)
    status = check_info(entry, &map);
  if (status == BITNET_OK &&
      (entry->info->num_variants != 0 || entry->info->num_entries != 0 ||
       entry->info->gpu != NULL))
    status = bitnet_status_make(BITNET_STATUS_INVALID_MODEL,
                                "model '%s': entry '%s' declares variants, "
                                "entries or a GPU program of its own",
                                path, name);
  if (status == BITNET_OK)
    status = describe_tensors(entry, path);
  if (status != BITNET_OK) {
    model_destroy(entry);
    return status;
  }
  *out_entry = entry;
  return BITNET_OK;
}

const char *bitnet_model_variant_name(const bitnet_model *model) {
  return model ? model->variant : NULL;
}

const char *bitnet_model_path(const bitnet_model *model) {
  return model ? model->path : NULL;
}

int32_t bitnet_model_num_inputs(const bitnet_model *model) {
  return model ? model->info->num_inputs : 0;
}

int32_t bitnet_model_num_outputs(const bitnet_model *model) {
  return model ? model->info->num_outputs : 0;
}

static bitnet_status get_desc(const char *fn, const bitnet_model *model,
                              int is_output, int32_t index,
                              bitnet_tensor_desc *out_desc) {
  BITNET_CHECK_ARG(model, fn);
  BITNET_CHECK_ARG(out_desc, fn);
  int32_t count = is_output ? model->info->num_outputs : model->info->num_inputs;
  if (index < 0 || index >= count)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: index %d is out of range: the model has %d %s",
                              fn, (int)index, (int)count,
                              is_output ? "outputs" : "inputs");
  *out_desc = model->descs[(is_output ? model->info->num_inputs : 0) + index];
  return BITNET_OK;
}

bitnet_status bitnet_model_input(const bitnet_model *model, int32_t index,
                                 bitnet_tensor_desc *out_desc) {
  return get_desc("bitnet_model_input", model, 0, index, out_desc);
}

bitnet_status bitnet_model_output(const bitnet_model *model, int32_t index,
                                  bitnet_tensor_desc *out_desc) {
  return get_desc("bitnet_model_output", model, 1, index, out_desc);
}

static bitnet_status find_by_name(const char *fn, const bitnet_model *model,
                                  int is_output, const char *name,
                                  int32_t *out_index) {
  BITNET_CHECK_ARG(model, fn);
  BITNET_CHECK_ARG(name, fn);
  BITNET_CHECK_ARG(out_index, fn);
  *out_index = -1;
  int32_t count = is_output ? model->info->num_outputs : model->info->num_inputs;
  const bitnet_tensor_desc *descs =
      model->descs + (is_output ? model->info->num_inputs : 0);
  for (int32_t i = 0; i < count; ++i) {
    if (strcmp(descs[i].name, name) == 0) {
      *out_index = i;
      return BITNET_OK;
    }
  }
  /* Lists the names that exist. */
  size_t list_len = 1;
  for (int32_t i = 0; i < count; ++i)
    list_len += strlen(descs[i].name) + 4;
  char *list = malloc(list_len);
  if (list != NULL) {
    list[0] = '\0';
    for (int32_t i = 0; i < count; ++i) {
      strcat(list, i ? ", '" : "'");
      strcat(list, descs[i].name);
      strcat(list, "'");
    }
  }
  bitnet_status status = bitnet_status_make(
      BITNET_STATUS_NOT_FOUND, "model '%s' has no %s named '%s' (it has: %s)",
      model->path, is_output ? "output" : "input", name,
      list == NULL ? "?" : count == 0 ? "none" : list);
  free(list);
  return status;
}

bitnet_status bitnet_model_find_input(const bitnet_model *model,
                                      const char *name, int32_t *out_index) {
  return find_by_name("bitnet_model_find_input", model, 0, name, out_index);
}

bitnet_status bitnet_model_find_output(const bitnet_model *model,
                                       const char *name, int32_t *out_index) {
  return find_by_name("bitnet_model_find_output", model, 1, name, out_index);
}

bitnet_status bitnet_model_get_mapping(const bitnet_model *model,
                                       bitnet_model_mapping *out_mapping) {
  BITNET_CHECK_ARG(model, "bitnet_model_get_mapping");
  BITNET_CHECK_ARG(out_mapping, "bitnet_model_get_mapping");
  memset(out_mapping, 0, sizeof(*out_mapping));
  const bitnet_model *root = model;
  while (root->parent)
    root = root->parent;
  /* The copy bitnet_model_use_huge_pages() made is anonymous memory inside
   * the read-only segments' addresses. */
  bitnet_object_map map;
  int have_map = root->huge_page_bytes > 0 &&
                 map_object(root->path, root->handle, &map) == BITNET_OK;
  FILE *smaps = fopen("/proc/self/smaps", "r");
  if (smaps == NULL)
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "bitnet_model_get_mapping: /proc/self/smaps is "
                              "not available");
  /* A mapping's first line: start-end perms offset major:minor inode path;
   * then lines "Field: value kB". Mappings are matched by the device and
   * inode the file had when it was loaded, which neither another spelling
   * of the path nor a later rebuild can fool. */
  char line[4096];
  enum { OTHER, FILE_READ_ONLY, MOVED } current = OTHER;
  while (fgets(line, sizeof(line), smaps) != NULL) {
    unsigned long long start, end, offset, inode, kib;
    unsigned major_id, minor_id;
    char perms[8];
    if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms,
               &offset, &major_id, &minor_id, &inode) == 7) {
      current = OTHER;
      if (inode == 0 && have_map && perms[1] != 'w' &&
          bitnet_object_holds(&map, (const void *)(uintptr_t)start,
                              (int64_t)(end - start), PF_R)) {
        current = MOVED;
        continue;
      }
      if (inode != (unsigned long long)model->file_ino ||
          major_id != major(model->file_dev) ||
          minor_id != minor(model->file_dev))
        continue;
      int64_t size = (int64_t)(end - start);
      if (perms[1] == 'w')
        out_mapping->writable_bytes += size;
      else if (perms[2] == 'x')
        out_mapping->code_bytes += size;
      else if (perms[0] == 'r') {
        out_mapping->read_only_bytes += size;
        current = FILE_READ_ONLY;
      }
    } else if (current == FILE_READ_ONLY &&
               sscanf(line, "FilePmdMapped: %llu kB", &kib) == 1) {
      out_mapping->huge_page_bytes += (int64_t)kib * 1024;
    } else if (current == MOVED &&
               sscanf(line, "AnonHugePages: %llu kB", &kib) == 1) {
      out_mapping->huge_page_bytes += (int64_t)kib * 1024;
    }
  }
  fclose(smaps);
  /* Moved onto huge pages: still the model's read-only data, at the same
   * addresses, though no longer mapped from its file. */
  out_mapping->read_only_bytes += root->huge_page_bytes;
  return BITNET_OK;
}

int bitnet_model_is_gpu(const bitnet_model *model) {
  return model != NULL && model->info->gpu != NULL;
}

const char *bitnet_model_metadata(const bitnet_model *model, const char *key) {
  if (model == NULL || key == NULL)
    return NULL;
  if (model->parent) /* an entry's descriptor leaves it to the main one's */
    model = model->parent;
  const bitnet_model_info *info = model->info;
  for (int32_t i = 0; i < info->num_metadata; ++i)
    if (strcmp(info->metadata[2 * i], key) == 0)
      return info->metadata[2 * i + 1];
  return NULL;
}

/*===----------------------------------------------------------------------===*
 * Huge pages for the read-only data
 *===----------------------------------------------------------------------===*/

/* Replaces [begin, begin + bytes) (2 MiB aligned, read-only, mapped from
 * `fd` at `offset`) by a private copy on huge pages, read-only, at the same
 * addresses. The copy is read from the file, not through the mapping, so
 * the file's pages never join the process's resident set beside it. */
static bitnet_status move_to_huge_pages(const char *path, int fd,
                                        uintptr_t begin, size_t bytes,
                                        uint64_t offset) {
  size_t slack = BITNET_HUGE_PAGE;
  char *raw = mmap(NULL, bytes + slack, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "model '%s': no memory for a huge-page copy of "
                              "%zu bytes of weights: %s",
                              path, bytes, strerror(errno));
  char *copy = (char *)(((uintptr_t)raw + slack - 1) & ~(slack - 1));
  /* The slack on either side of the aligned copy goes back now. */
  if (copy > raw)
    munmap(raw, (size_t)(copy - raw));
  size_t tail = (size_t)(raw + bytes + slack - (copy + bytes));
  if (tail > 0)
    munmap(copy + bytes, tail);
  const char *failed = NULL;
  int err = 0;
  if (madvise(copy, bytes, MADV_HUGEPAGE) != 0)
    failed = "madvise(MADV_HUGEPAGE)";
  for (size_t done = 0; failed == NULL && done < bytes;) {
    ssize_t got = pread(fd, copy + done, bytes - done, (off_t)(offset + done));
    if (got > 0)
      done += (size_t)got;
    else if (got == 0 || errno != EINTR) {
      failed = "reading the model file";
      if (got == 0)
        errno = EIO; /* the file is shorter than its segments */
    }
  }
  if (failed == NULL && mprotect(copy, bytes, PROT_READ) != 0)
    failed = "mprotect";
  if (failed == NULL &&
      mremap(copy, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED,
             (void *)begin) == MAP_FAILED)
    failed = "mremap";
  if (failed != NULL) {
    err = errno;
    munmap(copy, bytes);
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "model '%s': cannot move its weights onto huge "
                              "pages: %s: %s",
                              path, failed, strerror(err));
  }
  return BITNET_OK;
}

bitnet_status bitnet_model_use_huge_pages(bitnet_model *model,
                                          int64_t *out_bytes) {
  BITNET_CHECK_ARG(model, "bitnet_model_use_huge_pages");
  if (out_bytes)
    *out_bytes = 0;
  while (model->parent) /* an entry shares its parent's object */
    model = model->parent;
  if (model->huge_pages)
    return BITNET_OK;
  if (!huge_pages_enabled())
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "model '%s': transparent huge pages are off on "
                              "this system "
                              "(/sys/kernel/mm/transparent_hugepage/enabled)",
                              model->path);
  bitnet_object_map map;
  bitnet_status status = map_object(model->path, model->handle, &map);
  if (status)
    return status;
  /* The file loaded, not whatever is at its path now. */
  int fd = open(model->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != model->file_dev ||
      st.st_ino != model->file_ino) {
    if (fd >= 0)
      close(fd);
    return bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                              "model '%s': the file at its path is no longer "
                              "the one loaded",
                              model->path);
  }
  int64_t moved = 0;
  for (int i = 0; i < map.count; ++i) {
    uintptr_t begin, end;
    if (!read_only_huge_pages(&map, i, &begin, &end))
      continue;
    status = move_to_huge_pages(
        model->path, fd, begin, (size_t)(end - begin),
        map.segments[i].offset + (begin - map.segments[i].begin));
    if (status)
      break;
    moved += (int64_t)(end - begin);
  }
  close(fd);
  /* What moved before a failure stays moved (the same bytes). */
  model->huge_page_bytes = moved;
  if (status)
    return status;
  model->huge_pages = 1;
  if (out_bytes)
    *out_bytes = moved;
  return BITNET_OK;
}
