// The system zstd library (Debian: libzstd-dev), for the `Zstd` package trait.
#include <zstd.h>
