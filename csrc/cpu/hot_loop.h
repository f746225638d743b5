// IPDPP_HOT: the CPU samplers' hot loops, compiled for two instruction sets.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// The hot loops are compiled twice, for AVX2 + FMA (x86-64-v3) and for the baseline ISA; the
// dynamic loader picks one clone per CPU. Results are reproducible on a machine; the two clones
// round differently (FMA), so a seed may give other samples on a CPU without AVX2.
#define IPDPP_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define IPDPP_HOT
#endif
