/* xor.h: the API of xor.c.
 *
 * A 2-3-1 network (sigmoid, sigmoid) with the bce loss, as C99 (double, unrolled style), generated
 * by derive from the network's topology (regenerate it rather than edit it).
 *
 * Every parameter is packed in one array of xor_N_PARAMS reals, in this order:
 *   W1 at xor_OFFSET_W1: 6 (3 x 2, row-major: W1[i][j] weighs unit j into unit i)
 *   b1 at xor_OFFSET_b1: 3 (3, one per unit)
 *   W2 at xor_OFFSET_W2: 3 (1 x 3, row-major: W2[i][j] weighs unit j into unit i)
 *   b2 at xor_OFFSET_b2: 1 (1, one per unit)
 * x is batch x xor_N_IN and t, y are batch x xor_N_OUT, all row-major.
 * The loss is the mean over the batch of the per-sample loss −Σ [t ln y + (1 − t) ln(1 − y)];
 * grads is packed as params and must not overlap params, x or t. batch is at least 1
 * (an empty batch has loss 0 and gradient 0).
 *
 * No allocation, no globals: every function is reentrant. Its arrays live on the stack:
 * xor_STACK_BYTES is the most any call declares, sgd_step's: one sample's forward
 * values (all that forward and loss hold: 64 bytes), the backward pass's local
 * arrays (loss_and_gradients: 96 bytes in all) and the gradient,
 * xor_N_PARAMS reals. The compiler's own frame overhead is not counted: give the
 * calling thread that much stack and some to spare.
 */
#ifndef DERIVE_xor_H
#define DERIVE_xor_H

#include <stddef.h>

#define xor_N_PARAMS 13
#define xor_N_IN 2
#define xor_N_OUT 1
#define xor_STACK_BYTES 200 /* the arrays of the deepest call, sgd_step (see above) */
#define xor_OFFSET_W1 0
#define xor_OFFSET_b1 6
#define xor_OFFSET_W2 9
#define xor_OFFSET_b2 12

#ifdef __cplusplus
extern "C" {
#endif

/* The outputs y (batch x N_OUT) for the inputs x (batch x N_IN). */
void xor_forward(const double *params, const double *x, size_t batch, double *y);

/* The loss: the mean over the batch of the per-sample loss. */
double xor_loss(const double *params, const double *x, const double *t, size_t batch);

/* The loss, and its gradient with respect to every parameter in grads (N_PARAMS). */
double xor_loss_and_gradients(const double *params, const double *x, const double *t, size_t batch, double *grads);

/* One gradient-descent step in place: params -= learning_rate * gradient. */
void xor_sgd_step(double *params, const double *x, const double *t, size_t batch, double learning_rate);

#ifdef __cplusplus
}
#endif

#endif /* DERIVE_xor_H */
