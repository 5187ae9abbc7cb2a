/* One deflate at level 6 (gzip wrapper, memLevel 8, one reused stream) of the file named on the
 * command line, timed over 300 compressions, best of 5 rounds. Built twice by
 * scripts/bench-zlib-builds.sh: against the system zlib (what StrataCompression uses) and against
 * the zlib copy swift-nio-extras vendors (what Vapor's built-in compression uses). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef VENDORED
#include "nioextras-zlib.h"
#define ZOK CNIOEXTRAS_Z_OK
#define ZFIN CNIOEXTRAS_Z_FINISH
#define ZDEF CNIOEXTRAS_Z_DEFLATED
#define ZSTRAT CNIOEXTRAS_Z_DEFAULT_STRATEGY
#define ZSTREAM cnioextras_z_stream
#else
#include <zlib.h>
#define ZOK Z_OK
#define ZFIN Z_FINISH
#define ZDEF Z_DEFLATED
#define ZSTRAT Z_DEFAULT_STRATEGY
#define ZSTREAM z_stream
#endif
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "rb"); if (!f) return 2; 
  static unsigned char in[200000], out[300000];
  size_t n = fread(in, 1, sizeof in, f); fclose(f);
  ZSTREAM s = {0}; deflateInit2(&s, 6, ZDEF, 31, 8, ZSTRAT);
  struct timespec a, b; double best = 1e9; size_t outn = 0;
  for (int round = 0; round < 5; round++) {
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 300; i++) {
      deflateReset(&s); s.next_in = in; s.avail_in = n; s.next_out = out; s.avail_out = sizeof out;
      deflate(&s, ZFIN); outn = sizeof out - s.avail_out;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / 300;
    if (us < best) best = us;
  }
  printf("%s: %zu -> %zu bytes, best %.1f us per compression\n",
#ifdef VENDORED
  "zlib vendored by swift-nio-extras",
#else
  "system zlib",
#endif
  n, outn, best);
  return 0;
}
