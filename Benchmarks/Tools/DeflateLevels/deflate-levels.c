/* Sizes and speeds of the system zlib (levels 1-9: gzip wrapper, memLevel 8, 15-bit window, one
 * reused stream) and the system libdeflate (levels 1-12, gzip wrapper, one reused compressor) on
 * each file named on the command line, then the level map StrataCompression uses: for each zlib
 * level, the fastest libdeflate level whose output is no larger than zlib's on typical text,
 * read as the mean over the files of libdeflate's size / zlib's size being at most 1 (each file
 * counts once, whatever its size). The stricter map, no larger on every single file, is printed
 * too.
 * Built and run by scripts/bench-deflate-levels.sh. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

#define MAXFILES 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* Best time of 5 rounds of enough repetitions to last about 20 ms each, in seconds per call. */
#define TIME(call, seconds)                                                    \
  do {                                                                         \
    int reps = 1;                                                              \
    double start = now();                                                      \
    call;                                                                      \
    double once = now() - start;                                               \
    if (once < 0.02) reps = (int)(0.02 / (once > 1e-7 ? once : 1e-7)) + 1;     \
    seconds = 1e9;                                                             \
    for (int round = 0; round < 5; round++) {                                  \
      start = now();                                                           \
      for (int i = 0; i < reps; i++) call;                                     \
      double each = (now() - start) / reps;                                    \
      if (each < seconds) seconds = each;                                      \
    }                                                                          \
  } while (0)

static size_t zlib_gzip(z_stream *s, const unsigned char *in, size_t n, unsigned char *out, size_t cap) {
  deflateReset(s);
  s->next_in = (unsigned char *)in;
  s->avail_in = (unsigned)n;
  s->next_out = out;
  s->avail_out = (unsigned)cap;
  if (deflate(s, Z_FINISH) != Z_STREAM_END) { fprintf(stderr, "zlib: output too small\n"); exit(1); }
  return cap - s->avail_out;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s file...\n", argv[0]); return 2; }
  int files = argc - 1 > MAXFILES ? MAXFILES : argc - 1;
  static size_t zsize[MAXFILES][10], lsize[MAXFILES][13];
  static double ztime[10], ltime[13];
  size_t total_in = 0;
  for (int f = 0; f < files; f++) {
    FILE *file = fopen(argv[f + 1], "rb");
    if (!file) { perror(argv[f + 1]); return 1; }
    fseek(file, 0, SEEK_END);
    size_t n = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *in = malloc(n + 1);
    size_t cap = n + n / 8 + 1024;
    unsigned char *out = malloc(cap);
    if (!in || !out || fread(in, 1, n, file) != n) { fprintf(stderr, "read failed\n"); return 1; }
    fclose(file);
    total_in += n;
    printf("%s: %zu bytes; level:bytes@MB/s\n  zlib      ", argv[f + 1], n);
    for (int level = 1; level <= 9; level++) {
      z_stream s = {0};
      deflateInit2(&s, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
      double seconds;
      size_t produced = 0;
      TIME(produced = zlib_gzip(&s, in, n, out, cap), seconds);
      deflateEnd(&s);
      zsize[f][level] = produced;
      ztime[level] += seconds;
      printf(" %2d:%zu@%.0f", level, produced, n / seconds / 1e6);
    }
    printf("\n  libdeflate");
    for (int level = 1; level <= 12; level++) {
      struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
      double seconds;
      size_t produced = 0;
      TIME(produced = libdeflate_gzip_compress(c, in, n, out, cap), seconds);
      libdeflate_free_compressor(c);
      if (produced == 0) { fprintf(stderr, "libdeflate: output too small\n"); return 1; }
      lsize[f][level] = produced;
      ltime[level] += seconds;
      printf(" %2d:%zu@%.0f", level, produced, n / seconds / 1e6);
    }
    printf("\n");
    free(in);
    free(out);
  }
  printf("\nall files, %zu bytes: total output and MB/s of input (one core)\n", total_in);
  for (int level = 1; level <= 12; level++) {
    size_t zt = 0, lt = 0;
    for (int f = 0; f < files; f++) {
      if (level <= 9) zt += zsize[f][level];
      lt += lsize[f][level];
    }
    if (level <= 9)
      printf("  level %2d: zlib %8zu bytes %6.1f MB/s | libdeflate %8zu bytes %6.1f MB/s\n", level, zt,
             total_in / ztime[level] / 1e6, lt, total_in / ltime[level] / 1e6);
    else
      printf("  level %2d:                              | libdeflate %8zu bytes %6.1f MB/s\n", level, lt,
             total_in / ltime[level] / 1e6);
  }
  printf("\nmap: zlib level -> fastest libdeflate level whose mean size ratio (per file) is <= 1\n");
  for (int zl = 1; zl <= 9; zl++) {
    int chosen = 0, strict = 0;
    double best = 1e9, best_strict = 1e9, mean_chosen = 0, worst_chosen = 0;
    for (int ll = 1; ll <= 12; ll++) {
      double mean = 0, worst = 0;
      for (int f = 0; f < files; f++) {
        double ratio = (double)lsize[f][ll] / (double)zsize[f][zl];
        mean += ratio / files;
        if (ratio > worst) worst = ratio;
      }
      if (mean <= 1.0 && ltime[ll] < best) { best = ltime[ll]; chosen = ll; mean_chosen = mean; worst_chosen = worst; }
      if (worst <= 1.0 && ltime[ll] < best_strict) { best_strict = ltime[ll]; strict = ll; }
    }
    printf("  %d -> %2d: %.2fx zlib's speed, mean size %.3f of zlib's, worst file %.3f", zl, chosen,
           chosen ? ztime[zl] / ltime[chosen] : 0.0, mean_chosen, worst_chosen);
    printf(" | no larger on every file: %2d (%.2fx)\n", strict, strict ? ztime[zl] / ltime[strict] : 0.0);
  }
  return 0;
}
