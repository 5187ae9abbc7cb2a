// The system libdeflate, for the raw libdeflate rows of CompressionBenchmarks.
#include <libdeflate.h>
