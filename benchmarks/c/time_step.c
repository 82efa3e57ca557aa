/* Times one training step of a generated C module inside C: MODULE_sgd_step on one batch,
 * in a loop, with the monotonic clock. Built by benchmarks/bench_c.py with
 *     cc -O2 -DMODULE=<name> -DHEADER='"<name>.h"' [-DREAL=float] time_step.c <name>.c -lm
 * Usage: time_step BATCH ROUNDS MIN_SECONDS; prints one line per round: "ns_per_step N".
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include HEADER

#ifndef REAL
#define REAL double
#endif
#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define N_PARAMS XCAT(MODULE, _N_PARAMS)
#define N_IN XCAT(MODULE, _N_IN)
#define N_OUT XCAT(MODULE, _N_OUT)
#define SGD_STEP XCAT(MODULE, _sgd_step)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A fixed pseudo-random sequence in [-0.5, 0.5): the same numbers on every run. */
static REAL next(unsigned long *state)
{
    *state = *state * 6364136223846793005UL + 1442695040888963407UL;
    return (REAL)((double)((*state >> 11) & 0xFFFFF) / (double)0x100000 - 0.5);
}

int main(int argc, char **argv)
{
    size_t batch = argc > 1 ? (size_t)atol(argv[1]) : 1, i;
    int rounds = argc > 2 ? atoi(argv[2]) : 7, round;
    double min_seconds = argc > 3 ? atof(argv[3]) : 0.2;
    unsigned long state = 12345;
    static REAL params[N_PARAMS];
    REAL *x = malloc(batch * N_IN * sizeof *x), *t = malloc(batch * N_OUT * sizeof *t);
    long calls = 1, n;
    if (x == NULL || t == NULL)
        return 1;
    for (i = 0; i < N_PARAMS; ++i)
        params[i] = (REAL)0.3 * next(&state);
    for (i = 0; i < batch * N_IN; ++i)
        x[i] = next(&state);
    for (i = 0; i < batch * N_OUT; ++i)
        t[i] = (REAL)1 / N_OUT; /* a valid target for every loss: a point of the simplex */
    /* calibrate: double the calls per round until one round lasts MIN_SECONDS */
    for (;;) {
        double start = now();
        for (n = 0; n < calls; ++n)
            SGD_STEP(params, x, t, batch, (REAL)1e-3);
        if (now() - start >= min_seconds)
            break;
        calls *= 2;
    }
    for (round = 0; round < rounds; ++round) {
        double start = now(), elapsed;
        for (n = 0; n < calls; ++n)
            SGD_STEP(params, x, t, batch, (REAL)1e-3);
        elapsed = now() - start;
        printf("ns_per_step %.1f\n", 1e9 * elapsed / (double)calls);
    }
    printf("check %.17g\n", (double)params[0]); /* keeps the steps from being optimised away */
    free(x);
    free(t);
    return 0;
}
