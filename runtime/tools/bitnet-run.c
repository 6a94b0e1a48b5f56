/*===- bitnet-run.c - Run a compiled model from the command line ----*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Loads a model compiled by `bitnet-compile --emit=so`, feeds it .npy or
 * random inputs, runs it (repeatedly, for timing), writes the outputs as
 * .npy, and reports times, memory and, on request, a kernel profile.
 *
 * Exit status: 0 on success, 1 when loading or running fails, 2 for bad
 * command-line usage.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/npy.h"

#include "tool_step.h"
#include "tool_version.h"

#define EXIT_USAGE 2
#define PRINT_LIMIT 16

static const char usage_text[] =
    "usage: bitnet-run MODEL.so [options]\n"
    "\n"
    "Runs a model compiled by `bitnet-compile --emit=so` and reports its run\n"
    "time and memory use.\n"
    "\n"
    "options:\n"
    "  --input NAME=FILE.npy  value of input NAME (repeat for each input); the\n"
    "                         file's dtype and shape must match the model's\n"
    "  --random               fill every input not given by --input with\n"
    "                         random values: floats uniform in [-1, 1), i8/u8\n"
    "                         over their whole range, bool 0/1, i16/i32/i64 in\n"
    "                         [0, 1000) or within the range the model accepts\n"
    "                         (token ids, positions)\n"
    "  --seed N               seed of --random (default 1)\n"
    "  --output-dir DIR       write each output to DIR/NAME.npy (DIR is created\n"
    "                         if missing; bf16 outputs are written as <f4)\n"
    "  --repeat N             timed runs (default 1)\n"
    "  --warmup N             untimed runs before them (default 0)\n"
    "  --threads N            threads for the kernels, N >= 1 (default: the\n"
    "                         number of online cores)\n"
    "  --profile FILE.json    profile the timed runs: print a per-kernel table\n"
    "                         and write a Chrome trace (open it in Perfetto)\n"
    "  --print                print every output's shape and first values\n"
    "  --quiet                print no report (errors and --print still go out)\n"
    "  --entry NAME           run the model's entry NAME instead of its main\n"
    "                         one (bitnet-compile --prefill-tokens adds\n"
    "                         'prefill'; the report lists the entries)\n"
    "  --verify               check the model file against the checksum\n"
    "                         bitnet-compile recorded in it before running\n"
    "                         (a damaged file is an error; reads the whole\n"
    "                         file)\n"
    "  --huge-pages           move the model's weights onto transparent huge\n"
    "                         pages before running (a private copy; see\n"
    "                         bitnet_model_use_huge_pages)\n"
    "  --help                 show this text\n"
    "  --version              show the version, git revision, runtime\n"
    "                         library and model ABI\n"
    "\n"
    "Exit status: 0 on success, 1 if the model cannot be loaded or run, 2 for\n"
    "bad usage.\n";

typedef struct input_arg {
  const char *name;
  const char *file;
} input_arg;

typedef struct options {
  const char *model_path;
  const char *entry; /* --entry, or NULL */
  input_arg *inputs;
  int num_inputs;
  int random;
  uint64_t seed;
  const char *output_dir;
  int64_t repeat;
  int64_t warmup;
  int32_t threads;
  const char *profile_path;
  int print;
  int quiet;
  int verify;
  int huge_pages;
} options;

static void usage_error(const char *format, const char *arg) {
  fprintf(stderr, "bitnet-run: ");
  fprintf(stderr, format, arg);
  fprintf(stderr, "\nTry 'bitnet-run --help' for more information.\n");
  exit(EXIT_USAGE);
}

/* Fails the program with `status`'s message when it is an error. */
static void check(bitnet_status status) {
  if (status == BITNET_OK)
    return;
  fprintf(stderr, "bitnet-run: error: %s\n", bitnet_status_message(status));
  bitnet_status_free(status);
  exit(EXIT_FAILURE);
}

static int64_t parse_int(const char *flag, const char *text, int64_t min,
                         int64_t max) {
  char *end;
  errno = 0;
  long long value = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    fprintf(stderr, "bitnet-run: %s expects an integer in [%lld, %lld], not '%s'\n",
            flag, (long long)min, (long long)max, text);
    fprintf(stderr, "Try 'bitnet-run --help' for more information.\n");
    exit(EXIT_USAGE);
  }
  return value;
}

static void parse_args(int argc, char **argv, options *opt) {
  memset(opt, 0, sizeof(*opt));
  opt->seed = 1;
  opt->repeat = 1;
  opt->threads = bitnet_default_num_threads();
  opt->inputs = calloc((size_t)argc, sizeof(input_arg));
  if (opt->inputs == NULL)
    exit(EXIT_FAILURE);
  for (int i = 1; i < argc; ++i) {
    char *arg = argv[i];
    if (arg[0] != '-' || arg[1] == '\0') {
      if (opt->model_path != NULL)
        usage_error("unexpected argument '%s' (only one model is run)", arg);
      opt->model_path = arg;
      continue;
    }
    /* --flag=value or --flag value */
    char *value = strchr(arg, '=');
    if (value != NULL)
      *value++ = '\0';
#define FLAG_VALUE()                                                           \
  (value != NULL ? value                                                       \
   : i + 1 < argc ? argv[++i]                                                  \
                  : (usage_error("option '%s' needs a value", arg), ""))
#define NO_VALUE()                                                             \
  do {                                                                         \
    if (value != NULL)                                                         \
      usage_error("option '%s' takes no value", arg);                          \
  } while (0)
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage_text, stdout);
      exit(EXIT_SUCCESS);
    } else if (strcmp(arg, "--version") == 0) {
      print_tool_version("bitnet-run");
      exit(EXIT_SUCCESS);
    } else if (strcmp(arg, "--input") == 0) {
      char *spec = FLAG_VALUE();
      char *eq = strchr(spec, '=');
      if (eq == NULL || eq == spec || eq[1] == '\0')
        usage_error("--input expects NAME=FILE.npy, not '%s'", spec);
      *eq = '\0';
      for (int k = 0; k < opt->num_inputs; ++k)
        if (strcmp(opt->inputs[k].name, spec) == 0)
          usage_error("input '%s' is given twice", spec);
      opt->inputs[opt->num_inputs].name = spec;
      opt->inputs[opt->num_inputs++].file = eq + 1;
    } else if (strcmp(arg, "--random") == 0) {
      NO_VALUE();
      opt->random = 1;
    } else if (strcmp(arg, "--verify") == 0) {
      NO_VALUE();
      opt->verify = 1;
    } else if (strcmp(arg, "--huge-pages") == 0) {
      NO_VALUE();
      opt->huge_pages = 1;
    } else if (strcmp(arg, "--entry") == 0) {
      opt->entry = FLAG_VALUE();
    } else if (strcmp(arg, "--seed") == 0) {
      opt->seed = (uint64_t)parse_int(arg, FLAG_VALUE(), 0, INT64_MAX);
    } else if (strcmp(arg, "--output-dir") == 0) {
      opt->output_dir = FLAG_VALUE();
    } else if (strcmp(arg, "--repeat") == 0) {
      opt->repeat = parse_int(arg, FLAG_VALUE(), 1, 100000000);
    } else if (strcmp(arg, "--warmup") == 0) {
      opt->warmup = parse_int(arg, FLAG_VALUE(), 0, 100000000);
    } else if (strcmp(arg, "--threads") == 0) {
      opt->threads = (int32_t)parse_int(arg, FLAG_VALUE(), 1, 1024);
    } else if (strcmp(arg, "--profile") == 0) {
      opt->profile_path = FLAG_VALUE();
    } else if (strcmp(arg, "--print") == 0) {
      NO_VALUE();
      opt->print = 1;
    } else if (strcmp(arg, "--quiet") == 0) {
      NO_VALUE();
      opt->quiet = 1;
    } else {
      usage_error("unknown option '%s'", arg);
    }
#undef FLAG_VALUE
#undef NO_VALUE
  }
  if (opt->model_path == NULL)
    usage_error("%s", "no model given");
}

/*--- Values -------------------------------------------------------------*/

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
           mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else { /* subnormal: normalise */
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof(x));
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (exp <= 0)
    return (uint16_t)sign; /* the random values never get this small */
  if (exp >= 31)
    return (uint16_t)(sign | 0x7c00);
  uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
  if ((mant & 0x1fff) > 0x1000 || ((mant & 0x1fff) == 0x1000 && (h & 1)))
    ++h; /* round to nearest even */
  return (uint16_t)h;
}

static double element_value(int32_t dtype, const void *data, int64_t i) {
  switch (dtype) {
  case BITNET_DTYPE_F32: return ((const float *)data)[i];
  case BITNET_DTYPE_F64: return ((const double *)data)[i];
  case BITNET_DTYPE_F16: return half_to_float(((const uint16_t *)data)[i]);
  case BITNET_DTYPE_BF16: {
    uint32_t bits = (uint32_t)((const uint16_t *)data)[i] << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
  }
  case BITNET_DTYPE_I8: return ((const int8_t *)data)[i];
  case BITNET_DTYPE_I16: return ((const int16_t *)data)[i];
  case BITNET_DTYPE_I32: return ((const int32_t *)data)[i];
  case BITNET_DTYPE_I64: return (double)((const int64_t *)data)[i];
  case BITNET_DTYPE_U8: return ((const uint8_t *)data)[i];
  case BITNET_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: return 0;
  }
}

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A random integer in [0, 1000), or in the input's declared range (its part
 * in [0, 1000) when there is one). */
static int64_t random_integer(const bitnet_tensor_desc *d, uint64_t r) {
  if (!(d->flags & BITNET_TENSOR_RANGE))
    return (int64_t)(r % 1000);
  int64_t lo = d->min_value, hi = d->max_value;
  if (hi >= 0 && lo <= 999) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 999 ? 999 : hi;
  }
  uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
  return (int64_t)((uint64_t)lo + (span ? r % span : r));
}

static void fill_random(const bitnet_tensor_desc *d, void *data,
                        uint64_t *state) {
  for (int64_t i = 0; i < d->num_elements; ++i) {
    uint64_t r = next_random(state);
    float u = (float)((double)(r >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    switch (d->dtype) {
    case BITNET_DTYPE_F32: ((float *)data)[i] = u; break;
    case BITNET_DTYPE_F64: ((double *)data)[i] = u; break;
    case BITNET_DTYPE_F16: ((uint16_t *)data)[i] = float_to_half(u); break;
    case BITNET_DTYPE_BF16: {
      uint32_t bits;
      memcpy(&bits, &u, sizeof(bits));
      ((uint16_t *)data)[i] = (uint16_t)(bits >> 16);
      break;
    }
    case BITNET_DTYPE_I8:
      ((int8_t *)data)[i] = (d->flags & BITNET_TENSOR_RANGE)
                                ? (int8_t)random_integer(d, r)
                                : (int8_t)(uint8_t)r;
      break;
    case BITNET_DTYPE_U8: ((uint8_t *)data)[i] = (uint8_t)r; break;
    case BITNET_DTYPE_BOOL: ((uint8_t *)data)[i] = (uint8_t)(r & 1); break;
    case BITNET_DTYPE_I16: ((int16_t *)data)[i] = (int16_t)random_integer(d, r); break;
    case BITNET_DTYPE_I32: ((int32_t *)data)[i] = (int32_t)random_integer(d, r); break;
    case BITNET_DTYPE_I64: ((int64_t *)data)[i] = random_integer(d, r); break;
    }
  }
}

static void format_shape(char *buf, size_t size, int32_t rank,
                         const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int32_t d = 0; d < rank && used < size; ++d)
    used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld",
                             (long long)shape[d]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
}

/* Prints dimension `dim` starting at element `offset`, numpy style, until
 * `budget` elements are printed. */
static void print_nested(const bitnet_tensor_desc *d, const void *data,
                         int32_t dim, int64_t offset, int64_t *budget) {
  int64_t stride = 1;
  for (int32_t k = dim + 1; k < d->rank; ++k)
    stride *= d->shape[k];
  putchar('[');
  for (int64_t i = 0; i < d->shape[dim]; ++i) {
    if (i > 0)
      printf(dim + 1 == d->rank ? ", " : ",\n%*s", dim + 1, "");
    if (*budget <= 0) {
      printf("...");
      break;
    }
    if (dim + 1 == d->rank) {
      printf("%.6g", element_value(d->dtype, data, offset + i));
      --*budget;
    } else {
      print_nested(d, data, dim + 1, offset + i * stride, budget);
    }
  }
  putchar(']');
}

static void print_tensor(const bitnet_tensor_desc *d, const void *data) {
  char shape[256];
  format_shape(shape, sizeof(shape), d->rank, d->shape);
  printf("%s: %s%s =\n", d->name, bitnet_dtype_name(d->dtype), shape);
  int64_t budget = PRINT_LIMIT;
  if (d->rank == 0)
    printf("%.6g", element_value(d->dtype, data, 0));
  else if (d->num_elements == 0)
    printf("[]");
  else
    print_nested(d, data, 0, 0, &budget);
  putchar('\n');
}

/* Writes output `d` to DIR/NAME.npy, the name made safe for a file name. */
static bitnet_status write_output(const char *dir, const bitnet_tensor_desc *d,
                                  const void *data) {
  size_t len = strlen(dir) + strlen(d->name) + 8;
  char *path = malloc(len);
  float *converted = NULL;
  if (path == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY, "out of memory");
  int n = snprintf(path, len, "%s/", dir);
  for (const char *c = d->name; *c; ++c)
    path[n++] = (char)((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                               (*c >= '0' && *c <= '9') || *c == '-' ||
                               *c == '_' || *c == '.'
                           ? *c
                           : '_');
  snprintf(path + n, len - (size_t)n, ".npy");
  int32_t dtype = d->dtype;
  if (dtype == BITNET_DTYPE_BF16) { /* NumPy has no bf16 */
    converted = malloc((size_t)(d->num_elements ? d->num_elements : 1) *
                       sizeof(float));
    if (converted == NULL) {
      free(path);
      return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t i = 0; i < d->num_elements; ++i)
      converted[i] = (float)element_value(dtype, data, i);
    dtype = BITNET_DTYPE_F32;
    data = converted;
  }
  bitnet_status status = bitnet_npy_write(path, dtype, d->rank, d->shape, data);
  free(converted);
  free(path);
  return status;
}

/*--- Reporting ------------------------------------------------------------*/

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int64_t n, double p) {
  int64_t rank = (int64_t)ceil(p / 100.0 * (double)n);
  if (rank < 1)
    rank = 1;
  return sorted[rank - 1];
}

/* Peak resident set size in KiB: VmHWM, or getrusage where /proc is absent. */
static long peak_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f != NULL) {
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
      if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
        break;
    fclose(f);
    if (kib >= 0)
      return kib;
  }
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) == 0)
    return usage.ru_maxrss;
  return -1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/*--- Main -----------------------------------------------------------------*/

int main(int argc, char **argv) {
  options opt;
  parse_args(argc, argv, &opt);

  bitnet_model *model = NULL;
  check(bitnet_model_load(opt.model_path, &model));
  double verify_ms = -1;
  if (opt.verify) {
    double start = now_ms();
    check(bitnet_model_verify(model));
    verify_ms = now_ms() - start;
  }
  int64_t huge_bytes = -1;
  double huge_ms = 0;
  if (opt.huge_pages) {
    double start = now_ms();
    huge_bytes = step_use_huge_pages(model);
    huge_ms = now_ms() - start;
  }
  if (opt.entry) {
    bitnet_model *entry = NULL;
    check(bitnet_model_open_entry(model, opt.entry, &entry));
    bitnet_model_release(model); /* the entry holds it */
    model = entry;
  }
  int32_t num_inputs = bitnet_model_num_inputs(model);
  int32_t num_outputs = bitnet_model_num_outputs(model);

  /* Every --input must name an input of the model. */
  for (int k = 0; k < opt.num_inputs; ++k) {
    int32_t index;
    check(bitnet_model_find_input(model, opt.inputs[k].name, &index));
  }

  bitnet_pool *pool = NULL;
  bitnet_thread_pool *threads = NULL;
  bitnet_context *context = NULL;
  check(bitnet_pool_create(&pool));
  check(bitnet_thread_pool_create(opt.threads, &threads));
  bitnet_context_options ctx_options = {pool, threads, NULL};
  check(bitnet_context_create(model, &ctx_options, &context));

  /* Inputs: from files, else random. */
  const void **inputs = calloc((size_t)num_inputs + 1, sizeof(void *));
  void **outputs = calloc((size_t)num_outputs + 1, sizeof(void *));
  bitnet_npy_array *arrays =
      calloc((size_t)num_inputs + 1, sizeof(bitnet_npy_array));
  if (inputs == NULL || outputs == NULL || arrays == NULL)
    check(bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY, "out of memory"));
  uint64_t rng = opt.seed;
  for (int32_t i = 0; i < num_inputs; ++i) {
    bitnet_tensor_desc d;
    check(bitnet_model_input(model, i, &d));
    const char *file = NULL;
    for (int k = 0; k < opt.num_inputs; ++k)
      if (strcmp(opt.inputs[k].name, d.name) == 0)
        file = opt.inputs[k].file;
    if (file != NULL) {
      check(bitnet_npy_read(file, pool, &arrays[i]));
      const bitnet_npy_array *a = &arrays[i];
      int same = a->dtype == d.dtype && a->rank == d.rank;
      for (int32_t k = 0; same && k < d.rank; ++k)
        same = a->shape[k] == d.shape[k];
      if (!same) {
        char given[256], expected[256];
        format_shape(given, sizeof(given), a->rank, a->shape);
        format_shape(expected, sizeof(expected), d.rank, d.shape);
        check(bitnet_status_make(
            BITNET_STATUS_INVALID_ARGUMENT,
            "input '%s': '%s' holds %s%s, the model expects %s%s", d.name,
            file, bitnet_dtype_name(a->dtype), given,
            bitnet_dtype_name(d.dtype), expected));
      }
      inputs[i] = a->data;
    } else if (opt.random) {
      void *data;
      check(bitnet_pool_allocate(pool, d.byte_size, 0, &data));
      fill_random(&d, data, &rng);
      inputs[i] = data;
    } else {
      check(bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                               "input '%s' has no value: pass --input "
                               "%s=FILE.npy or --random",
                               d.name, d.name));
    }
  }
  for (int32_t i = 0; i < num_outputs; ++i) {
    bitnet_tensor_desc d;
    check(bitnet_model_output(model, i, &d));
    check(bitnet_pool_allocate(pool, d.byte_size, 0, &outputs[i]));
  }

  for (int64_t r = 0; r < opt.warmup; ++r)
    check(bitnet_context_run(context, inputs, num_inputs, outputs, num_outputs));

  bitnet_profile_collector *collector = NULL;
  if (opt.profile_path != NULL) {
    check(bitnet_profile_collector_create(0, &collector));
    bitnet_profiler profiler = bitnet_profile_collector_profiler(collector);
    check(bitnet_context_set_profiler(context, &profiler));
  }
  double *times = malloc((size_t)opt.repeat * 2 * sizeof(double));
  if (times == NULL)
    check(bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY, "out of memory"));
  bitnet_pool_stats before, after;
  check(bitnet_pool_get_stats(pool, &before));
  for (int64_t r = 0; r < opt.repeat; ++r) {
    double start = now_ms();
    check(bitnet_context_run(context, inputs, num_inputs, outputs, num_outputs));
    times[r] = now_ms() - start;
  }
  check(bitnet_pool_get_stats(pool, &after));

  if (opt.output_dir != NULL) {
    if (mkdir(opt.output_dir, 0777) != 0 && errno != EEXIST)
      check(bitnet_status_make(BITNET_STATUS_IO_ERROR,
                               "cannot create output directory '%s': %s",
                               opt.output_dir, strerror(errno)));
    for (int32_t i = 0; i < num_outputs; ++i) {
      bitnet_tensor_desc d;
      check(bitnet_model_output(model, i, &d));
      check(write_output(opt.output_dir, &d, outputs[i]));
    }
  }
  if (opt.print) {
    for (int32_t i = 0; i < num_outputs; ++i) {
      bitnet_tensor_desc d;
      check(bitnet_model_output(model, i, &d));
      print_tensor(&d, outputs[i]);
    }
  }

  if (!opt.quiet) {
    const bitnet_model_info *info = bitnet_model_get_info(model);
    printf("model: %s (%s, produced by %s, target %s)\n", opt.model_path,
           info->name ? info->name : "?", info->producer ? info->producer : "?",
           info->target ? info->target : "?");
    if (opt.entry)
      printf("entry: %s\n", opt.entry);
    if (!opt.entry && bitnet_model_num_entries(model) > 0) {
      printf("entries besides the main one (--entry):");
      for (int32_t i = 0; i < bitnet_model_num_entries(model); ++i)
        printf(" %s", bitnet_model_entry_name(model, i));
      printf("\n");
    }
    if (info->num_variants > 0) {
      const char *variant = bitnet_model_variant_name(model);
      printf("build: %s (of %d variants and the baseline)\n",
             variant ? variant : "baseline", (int)info->num_variants);
    }
    if (verify_ms >= 0) {
      struct stat st;
      double mb = stat(opt.model_path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
      printf("checksum: ok (%.1f MB read in %.1f ms)\n", mb, verify_ms);
    }
    if (huge_bytes >= 0)
      printf("huge pages: %.1f MB of weights moved in %.1f ms\n",
             (double)huge_bytes / 1e6, huge_ms);
    printf("threads: %d, warmup runs: %lld, timed runs: %lld\n",
           (int)opt.threads, (long long)opt.warmup, (long long)opt.repeat);
    double *sorted = times + opt.repeat, sum = 0;
    memcpy(sorted, times, (size_t)opt.repeat * sizeof(double));
    qsort(sorted, (size_t)opt.repeat, sizeof(double), compare_doubles);
    for (int64_t r = 0; r < opt.repeat; ++r)
      sum += times[r];
    printf("\n%-8s %10s %10s %10s %10s %10s %10s\n", "time", "mean", "p50",
           "p95", "p99", "min", "max");
    printf("%-8s %10.4f %10.4f %10.4f %10.4f %10.4f %10.4f\n", "ms",
           sum / (double)opt.repeat, percentile(sorted, opt.repeat, 50),
           percentile(sorted, opt.repeat, 95), percentile(sorted, opt.repeat, 99),
           sorted[0], sorted[opt.repeat - 1]);

    bitnet_model_mapping mapping = {0};
    bitnet_status mapped = bitnet_model_get_mapping(model, &mapping);
    printf("\nmemory:\n");
    printf("  workspace             %lld bytes\n",
           (long long)bitnet_context_workspace_bytes(context));
    printf("  kernel stack buffers  %lld KiB a thread\n",
           (long long)(bitnet_model_get_info(model)->stack_bytes / 1024));
    printf("  pool peak in use      %lld bytes (%lld reserved)\n",
           (long long)after.peak_bytes_in_use,
           (long long)after.peak_bytes_reserved);
    printf("  pool allocations      %lld fresh, %lld reused; during timed "
           "runs: %lld fresh\n",
           (long long)after.allocations_fresh,
           (long long)after.allocations_from_pool,
           (long long)(after.allocations_fresh - before.allocations_fresh));
    printf("  process peak RSS      %ld KiB\n", peak_rss_kib());
    if (mapped == BITNET_OK)
      printf("  model mapped          %lld KiB read-only data (%lld KiB on 2 "
             "MiB pages), %lld KiB code, %lld KiB writable\n",
             (long long)(mapping.read_only_bytes / 1024),
             (long long)(mapping.huge_page_bytes / 1024),
             (long long)(mapping.code_bytes / 1024),
             (long long)(mapping.writable_bytes / 1024));
    else
      printf("  model mapped          unknown (%s)\n",
             bitnet_status_message(mapped));
    bitnet_status_free(mapped);
  }

  if (collector != NULL) {
    if (!opt.quiet) {
      printf("\nprofile:\n");
      check(bitnet_profile_collector_write_table(collector, stdout));
    }
    check(bitnet_profile_collector_write_trace(collector, opt.profile_path));
    if (!opt.quiet)
      printf("trace written to %s\n", opt.profile_path);
  }

  check(bitnet_context_set_profiler(context, NULL));
  bitnet_profile_collector_free(collector);
  for (int32_t i = 0; i < num_inputs; ++i) {
    if (arrays[i].data != NULL)
      bitnet_npy_array_free(&arrays[i]);
    else
      check(bitnet_pool_deallocate(pool, (void *)inputs[i]));
  }
  for (int32_t i = 0; i < num_outputs; ++i)
    check(bitnet_pool_deallocate(pool, outputs[i]));
  free(times);
  free(arrays);
  free(outputs);
  free(inputs);
  free(opt.inputs);
  bitnet_context_free(context);
  bitnet_thread_pool_release(threads);
  bitnet_pool_release(pool);
  bitnet_model_release(model);
  return EXIT_SUCCESS;
}
