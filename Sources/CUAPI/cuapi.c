// Everything in CUAPI is static inline in include/cuapi.h; this file gives the target a body.
#include "cuapi.h"
