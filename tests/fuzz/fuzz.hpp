#pragma once

// What the fuzz targets share: a check that turns a broken promise of the
// code under test into a crash libFuzzer reports (and saves the input of).

#include <cstdio>
#include <cstdlib>

/// Aborts with `what` when `cond` is false: the input broke a documented
/// behaviour, not just a sanitizer rule.
#define FUZZ_CHECK(cond, what)                                                 \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s) at %s:%d\n", what,      \
                   #cond, __FILE__, __LINE__);                                 \
      std::abort();                                                            \
    }                                                                          \
  } while (false)
