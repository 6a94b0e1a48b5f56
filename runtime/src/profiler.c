/*===- profiler.c - Built-in profile collector ----------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Keeps one entry per distinct name (kernels and runs, found through a hash
 * table), a stack of open spans per reporting thread, and a list of finished
 * spans for the Chrome trace. One mutex guards it all: the collector may be
 * shared by contexts running on several threads.
 *
 *===----------------------------------------------------------------------===*/

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_MAX_EVENTS 1000000
#define MAX_REPORTING_THREADS 256
#define MAX_DEPTH 32

typedef struct entry {
  char *name;
  int is_run;
  uint64_t hash;
  bitnet_kernel_stats stats;
} entry;

typedef struct event {
  int32_t entry;
  int32_t tid;
  int64_t start_ns;
  int64_t dur_ns;
  int64_t bytes;
  int64_t flops;
} event;

typedef struct open_span {
  int32_t entry;
  int64_t start_ns;
  int64_t bytes;
  int64_t flops;
} open_span;

typedef struct thread_state {
  pthread_t thread;
  int depth;
  open_span stack[MAX_DEPTH];
} thread_state;

struct bitnet_profile_collector {
  pthread_mutex_t mutex;
  int64_t origin_ns;

  entry *entries; /* kernels and run names, in order of first appearance */
  int32_t num_entries, cap_entries;
  int32_t *table; /* open addressing over entries, -1 = empty */
  int32_t table_size;

  event *events;
  int64_t num_events, cap_events, max_events, dropped_events;

  thread_state *threads;
  int32_t num_threads;

  int64_t runs, run_total_ns;
};

static uint64_t hash_name(const char *s, int is_run) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)is_run;
  for (; *s; ++s)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

bitnet_status bitnet_profile_collector_create(
    int64_t max_events, bitnet_profile_collector **out_collector) {
  BITNET_CHECK_ARG(out_collector, "bitnet_profile_collector_create");
  *out_collector = NULL;
  if (max_events < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "bitnet_profile_collector_create: max_events "
                              "%lld is negative",
                              (long long)max_events);
  bitnet_profile_collector *c = calloc(1, sizeof(*c));
  thread_state *threads = calloc(MAX_REPORTING_THREADS, sizeof(*threads));
  if (c == NULL || threads == NULL) {
    free(c);
    free(threads);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_profile_collector_create: out of memory");
  }
  pthread_mutex_init(&c->mutex, NULL);
  c->threads = threads;
  c->max_events = max_events ? max_events : DEFAULT_MAX_EVENTS;
  c->origin_ns = bitnet_now_ns();
  *out_collector = c;
  return BITNET_OK;
}

static void clear(bitnet_profile_collector *c) {
  for (int32_t i = 0; i < c->num_entries; ++i)
    free(c->entries[i].name);
  free(c->entries);
  free(c->table);
  free(c->events);
  c->entries = NULL;
  c->table = NULL;
  c->events = NULL;
  c->num_entries = c->cap_entries = c->table_size = 0;
  c->num_events = c->cap_events = c->dropped_events = 0;
  c->num_threads = 0;
  c->runs = c->run_total_ns = 0;
}

void bitnet_profile_collector_free(bitnet_profile_collector *c) {
  if (c == NULL)
    return;
  clear(c);
  free(c->threads);
  pthread_mutex_destroy(&c->mutex);
  free(c);
}

void bitnet_profile_collector_reset(bitnet_profile_collector *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mutex);
  clear(c);
  c->origin_ns = bitnet_now_ns();
  pthread_mutex_unlock(&c->mutex);
}

/* Index of the entry for `name`, adding it; -1 when out of memory. */
static int32_t find_entry(bitnet_profile_collector *c, const char *name,
                          int is_run) {
  if (name == NULL)
    name = "(unnamed)";
  uint64_t h = hash_name(name, is_run);
  if (c->table_size > 0) {
    for (int32_t i = (int32_t)(h & (uint64_t)(c->table_size - 1));;
         i = (i + 1) & (c->table_size - 1)) {
      int32_t e = c->table[i];
      if (e < 0)
        break;
      if (c->entries[e].hash == h && c->entries[e].is_run == is_run &&
          strcmp(c->entries[e].name, name) == 0)
        return e;
    }
  }
  /* Grows the table to keep it at most half full, then inserts. */
  if (2 * (c->num_entries + 1) > c->table_size) {
    int32_t size = c->table_size ? 2 * c->table_size : 64;
    int32_t *table = malloc((size_t)size * sizeof(*table));
    if (table == NULL)
      return -1;
    memset(table, 0xff, (size_t)size * sizeof(*table));
    for (int32_t e = 0; e < c->num_entries; ++e) {
      int32_t i = (int32_t)(c->entries[e].hash & (uint64_t)(size - 1));
      while (table[i] >= 0)
        i = (i + 1) & (size - 1);
      table[i] = e;
    }
    free(c->table);
    c->table = table;
    c->table_size = size;
  }
  if (c->num_entries == c->cap_entries) {
    int32_t cap = c->cap_entries ? 2 * c->cap_entries : 32;
    entry *entries = realloc(c->entries, (size_t)cap * sizeof(*entries));
    if (entries == NULL)
      return -1;
    c->entries = entries;
    c->cap_entries = cap;
  }
  char *copy = strdup(name);
  if (copy == NULL)
    return -1;
  int32_t e = c->num_entries++;
  entry *en = &c->entries[e];
  memset(en, 0, sizeof(*en));
  en->name = copy;
  en->is_run = is_run;
  en->hash = h;
  en->stats.name = copy;
  int32_t i = (int32_t)(h & (uint64_t)(c->table_size - 1));
  while (c->table[i] >= 0)
    i = (i + 1) & (c->table_size - 1);
  c->table[i] = e;
  return e;
}

/* The state of the calling thread, adding it; NULL when there are too many. */
static thread_state *this_thread(bitnet_profile_collector *c, int32_t *tid) {
  pthread_t self = pthread_self();
  for (int32_t i = 0; i < c->num_threads; ++i) {
    if (pthread_equal(c->threads[i].thread, self)) {
      *tid = i + 1;
      return &c->threads[i];
    }
  }
  if (c->num_threads == MAX_REPORTING_THREADS)
    return NULL;
  thread_state *t = &c->threads[c->num_threads++];
  t->thread = self;
  t->depth = 0;
  *tid = c->num_threads;
  return t;
}

static void begin_span(bitnet_profile_collector *c, const char *name,
                       int is_run, int64_t bytes, int64_t flops) {
  int64_t now = bitnet_now_ns();
  pthread_mutex_lock(&c->mutex);
  int32_t tid;
  thread_state *t = this_thread(c, &tid);
  int32_t e = find_entry(c, name, is_run);
  if (t != NULL && t->depth < MAX_DEPTH) {
    open_span *s = &t->stack[t->depth++];
    s->entry = e;
    s->start_ns = now;
    s->bytes = bytes;
    s->flops = flops;
  } else if (t != NULL) {
    t->depth++; /* too deep: counted so that ends still pair up */
  }
  pthread_mutex_unlock(&c->mutex);
}

static void end_span(bitnet_profile_collector *c) {
  int64_t now = bitnet_now_ns();
  pthread_mutex_lock(&c->mutex);
  int32_t tid;
  thread_state *t = this_thread(c, &tid);
  if (t == NULL || t->depth == 0 || t->depth-- > MAX_DEPTH) {
    pthread_mutex_unlock(&c->mutex);
    return;
  }
  open_span s = t->stack[t->depth];
  if (s.entry < 0) {
    pthread_mutex_unlock(&c->mutex);
    return;
  }
  int64_t dur = now - s.start_ns;
  entry *en = &c->entries[s.entry];
  if (en->is_run) {
    c->runs++;
    c->run_total_ns += dur;
  }
  bitnet_kernel_stats *st = &en->stats;
  if (st->calls == 0 || dur < st->min_ns)
    st->min_ns = dur;
  if (dur > st->max_ns)
    st->max_ns = dur;
  st->calls++;
  st->total_ns += dur;
  st->bytes += s.bytes;
  st->flops += s.flops;

  if (c->num_events == c->cap_events && c->num_events < c->max_events) {
    int64_t cap = c->cap_events ? 2 * c->cap_events : 1024;
    if (cap > c->max_events)
      cap = c->max_events;
    event *events = realloc(c->events, (size_t)cap * sizeof(*events));
    if (events != NULL) {
      c->events = events;
      c->cap_events = cap;
    }
  }
  if (c->num_events < c->cap_events) {
    event *ev = &c->events[c->num_events++];
    ev->entry = s.entry;
    ev->tid = tid;
    ev->start_ns = s.start_ns;
    ev->dur_ns = dur;
    ev->bytes = s.bytes;
    ev->flops = s.flops;
  } else {
    c->dropped_events++;
  }
  pthread_mutex_unlock(&c->mutex);
}

static void on_run_begin(void *user, const char *model) {
  begin_span(user, model, 1, 0, 0);
}

static void on_run_end(void *user, const char *model, int32_t result) {
  (void)model;
  (void)result;
  end_span(user);
}

static void on_kernel_begin(void *user, const char *kernel, int64_t bytes,
                            int64_t flops) {
  begin_span(user, kernel, 0, bytes, flops);
}

static void on_kernel_end(void *user, const char *kernel) {
  (void)kernel;
  end_span(user);
}

bitnet_profiler bitnet_profile_collector_profiler(bitnet_profile_collector *c) {
  bitnet_profiler p;
  memset(&p, 0, sizeof(p));
  if (c != NULL) {
    p.user = c;
    p.run_begin = on_run_begin;
    p.run_end = on_run_end;
    p.kernel_begin = on_kernel_begin;
    p.kernel_end = on_kernel_end;
  }
  return p;
}

int32_t bitnet_profile_collector_num_kernels(bitnet_profile_collector *c) {
  if (c == NULL)
    return 0;
  pthread_mutex_lock(&c->mutex);
  int32_t n = 0;
  for (int32_t e = 0; e < c->num_entries; ++e)
    n += !c->entries[e].is_run;
  pthread_mutex_unlock(&c->mutex);
  return n;
}

bitnet_status bitnet_profile_collector_kernel(bitnet_profile_collector *c,
                                              int32_t index,
                                              bitnet_kernel_stats *out_stats) {
  BITNET_CHECK_ARG(c, "bitnet_profile_collector_kernel");
  BITNET_CHECK_ARG(out_stats, "bitnet_profile_collector_kernel");
  pthread_mutex_lock(&c->mutex);
  int32_t n = 0;
  for (int32_t e = 0; e < c->num_entries; ++e) {
    if (c->entries[e].is_run)
      continue;
    if (n++ == index) {
      *out_stats = c->entries[e].stats;
      pthread_mutex_unlock(&c->mutex);
      return BITNET_OK;
    }
  }
  pthread_mutex_unlock(&c->mutex);
  return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                            "bitnet_profile_collector_kernel: index %d is out "
                            "of range: %d kernels were seen",
                            (int)index, (int)n);
}

bitnet_status bitnet_profile_collector_runs(bitnet_profile_collector *c,
                                            int64_t *out_runs,
                                            int64_t *out_total_ns) {
  BITNET_CHECK_ARG(c, "bitnet_profile_collector_runs");
  pthread_mutex_lock(&c->mutex);
  if (out_runs)
    *out_runs = c->runs;
  if (out_total_ns)
    *out_total_ns = c->run_total_ns;
  pthread_mutex_unlock(&c->mutex);
  return BITNET_OK;
}

static int by_total_desc(const void *a, const void *b) {
  const bitnet_kernel_stats *x = a, *y = b;
  if (x->total_ns != y->total_ns)
    return x->total_ns > y->total_ns ? -1 : 1;
  return strcmp(x->name, y->name);
}

bitnet_status bitnet_profile_collector_write_table(bitnet_profile_collector *c,
                                                   FILE *stream) {
  BITNET_CHECK_ARG(c, "bitnet_profile_collector_write_table");
  BITNET_CHECK_ARG(stream, "bitnet_profile_collector_write_table");
  pthread_mutex_lock(&c->mutex);
  bitnet_kernel_stats *rows =
      malloc((size_t)(c->num_entries ? c->num_entries : 1) * sizeof(*rows));
  if (rows == NULL) {
    pthread_mutex_unlock(&c->mutex);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_profile_collector_write_table: out of "
                              "memory");
  }
  int32_t n = 0, name_width = 6;
  int64_t kernel_ns = 0;
  for (int32_t e = 0; e < c->num_entries; ++e) {
    if (c->entries[e].is_run)
      continue;
    rows[n++] = c->entries[e].stats;
    kernel_ns += c->entries[e].stats.total_ns;
    int32_t len = (int32_t)strlen(c->entries[e].name);
    if (len > name_width)
      name_width = len > 60 ? 60 : len;
  }
  qsort(rows, (size_t)n, sizeof(*rows), by_total_desc);
  int64_t base_ns = c->run_total_ns > 0 ? c->run_total_ns : kernel_ns;
  fprintf(stream, "%-*s %8s %11s %11s %7s %9s %9s\n", name_width, "kernel",
          "calls", "total ms", "mean us", "%time", "GB/s", "GFLOP/s");
  for (int32_t i = 0; i < n; ++i) {
    const bitnet_kernel_stats *r = &rows[i];
    double total_s = (double)r->total_ns * 1e-9;
    fprintf(stream, "%-*.*s %8lld %11.3f %11.3f %6.1f%% %9.2f %9.2f\n",
            name_width, name_width, r->name, (long long)r->calls,
            (double)r->total_ns * 1e-6,
            r->calls ? (double)r->total_ns * 1e-3 / (double)r->calls : 0.0,
            base_ns ? 100.0 * (double)r->total_ns / (double)base_ns : 0.0,
            total_s > 0 ? (double)r->bytes / total_s * 1e-9 : 0.0,
            total_s > 0 ? (double)r->flops / total_s * 1e-9 : 0.0);
  }
  if (c->runs > 0)
    fprintf(stream,
            "%lld runs, %.3f ms per run, kernels cover %.1f%% of run time\n",
            (long long)c->runs, (double)c->run_total_ns * 1e-6 / (double)c->runs,
            100.0 * (double)kernel_ns / (double)(c->run_total_ns ? c->run_total_ns : 1));
  pthread_mutex_unlock(&c->mutex);
  free(rows);
  return BITNET_OK;
}

/* Writes `s` as a JSON string literal. */
static void write_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; ++s) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

bitnet_status bitnet_profile_collector_write_trace(bitnet_profile_collector *c,
                                                   const char *path) {
  BITNET_CHECK_ARG(c, "bitnet_profile_collector_write_trace");
  BITNET_CHECK_ARG(path, "bitnet_profile_collector_write_trace");
  bitnet_out_file out;
  FILE *f = bitnet_out_file_open(&out, path);
  if (f == NULL)
    return bitnet_status_make(BITNET_STATUS_IO_ERROR,
                              "cannot write trace '%s': %s", path,
                              strerror(errno));
  long pid = (long)getpid();
  pthread_mutex_lock(&c->mutex);
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
  fprintf(f,
          "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%ld,\"tid\":0,"
          "\"args\":{\"name\":\"bitnet_rt\"}}",
          pid);
  for (int64_t i = 0; i < c->num_events; ++i) {
    const event *ev = &c->events[i];
    const entry *en = &c->entries[ev->entry];
    fputs(",\n{\"name\":", f);
    write_json_string(f, en->name);
    fprintf(f,
            ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
            "\"pid\":%ld,\"tid\":%d",
            en->is_run ? "run" : "kernel",
            (double)(ev->start_ns - c->origin_ns) * 1e-3,
            (double)ev->dur_ns * 1e-3, pid, (int)ev->tid);
    if (!en->is_run)
      fprintf(f, ",\"args\":{\"bytes\":%lld,\"flops\":%lld}",
              (long long)ev->bytes, (long long)ev->flops);
    fputc('}', f);
  }
  fprintf(f, "\n],\"otherData\":{\"dropped_events\":%lld}}\n",
          (long long)c->dropped_events);
  pthread_mutex_unlock(&c->mutex);
  if (!bitnet_out_file_close(&out, 1))
    return bitnet_status_make(BITNET_STATUS_IO_ERROR,
                              "cannot write trace '%s': %s", path,
                              strerror(errno ? errno : EIO));
  return BITNET_OK;
}
