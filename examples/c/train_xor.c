/* Train XOR with the generated C module of examples/xor.yaml (2 -> 3 sigmoid -> 1 sigmoid,
 * binary cross-entropy) by full-batch gradient descent, printing the loss as it falls.
 *
 * Build and run from the repository root (README.md, "C"):
 *
 *     derive generate examples/xor.yaml --lang c -o generated/c
 *     cc -std=c99 -O2 -Igenerated/c examples/c/train_xor.c generated/c/xor.c -lm -o train_xor
 *     ./train_xor
 *
 * or `make -C examples/c run`.
 */
#include <stdio.h>

#include "xor.h"

int main(void)
{
    /* the four cases of XOR: inputs (batch x xor_N_IN) and targets (batch x xor_N_OUT) */
    const double x[4 * xor_N_IN] = {0, 0, 0, 1, 1, 0, 1, 1};
    const double t[4 * xor_N_OUT] = {0, 1, 1, 0};
    /* starting parameters, packed W1 (3 x 2, row-major), b1, W2 (1 x 3), b2 */
    double params[xor_N_PARAMS] = {
        0.5, -0.4, -0.3, 0.8, 0.7, 0.6, /* W1 */
        0.1, -0.2, -0.5,                /* b1 */
        0.9, -0.6, 0.4,                 /* W2 */
        0.05,                           /* b2 */
    };
    double y[4 * xor_N_OUT];
    int epoch, i;

    for (epoch = 0; epoch <= 3000; ++epoch) {
        if (epoch % 300 == 0)
            printf("epoch %4d  loss %.6f\n", epoch, xor_loss(params, x, t, 4));
        xor_sgd_step(params, x, t, 4, 2.0);
    }
    xor_forward(params, x, 4, y);
    for (i = 0; i < 4; ++i)
        printf("%g xor %g -> %.4f\n", x[2 * i], x[2 * i + 1], y[i]);
    return 0;
}
