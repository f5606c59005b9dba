#include "trace/trace-target_i386_pml.h"
