/* SPDX-License-Identifier: MIT */
#ifndef CACHEFS_FUZZ_H
#define CACHEFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry point; replay.c calls it without libFuzzer. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
