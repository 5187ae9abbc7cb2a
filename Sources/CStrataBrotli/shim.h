// The system brotli encoder (Debian: libbrotli-dev), for the `Brotli` package trait.
#include <brotli/encode.h>
