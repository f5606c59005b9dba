/*
 * qemu-pml: the one include that lets pure-logic files (no CPU state, no
 * QEMU APIs) build both inside QEMU and in the host-side unit tests.
 */
#ifndef PML_COMMON_H
#define PML_COMMON_H

#ifdef PML_HOST_TEST
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#endif
#else
#include "qemu/osdep.h"
#endif

#endif
