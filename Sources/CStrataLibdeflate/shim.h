// The system libdeflate (Debian: libdeflate-dev), for the `Libdeflate` package trait.
#include <libdeflate.h>
