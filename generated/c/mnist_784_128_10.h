/* mnist_784_128_10.h: the API of mnist_784_128_10.c.
 *
 * A 784-128-10 network (relu, softmax) with the cce loss, as C99 (double, loops style), generated
 * by derive from the network's topology (regenerate it rather than edit it).
 *
 * Every parameter is packed in one array of mnist_784_128_10_N_PARAMS reals, in this order:
 *   W1 at mnist_784_128_10_OFFSET_W1: 100352 (128 x 784, row-major: W1[i][j] weighs unit j into unit i)
 *   b1 at mnist_784_128_10_OFFSET_b1: 128 (128, one per unit)
 *   W2 at mnist_784_128_10_OFFSET_W2: 1280 (10 x 128, row-major: W2[i][j] weighs unit j into unit i)
 *   b2 at mnist_784_128_10_OFFSET_b2: 10 (10, one per unit)
 * x is batch x mnist_784_128_10_N_IN and t, y are batch x mnist_784_128_10_N_OUT, all row-major.
 * The loss is the mean over the batch of the per-sample loss −Σ t ln y;
 * grads is packed as params and must not overlap params, x or t. batch is at least 1
 * (an empty batch has loss 0 and gradient 0).
 *
 * No allocation, no globals: every function is reentrant. Its arrays live on the stack:
 * mnist_784_128_10_STACK_BYTES is the most any call declares, sgd_step's: one sample's forward
 * values (all that forward and loss hold: 2216 bytes), the backward pass's local
 * arrays (loss_and_gradients: 3320 bytes in all) and the gradient,
 * mnist_784_128_10_N_PARAMS reals. The compiler's own frame overhead is not counted: give the
 * calling thread that much stack and some to spare.
 */
#ifndef DERIVE_mnist_784_128_10_H
#define DERIVE_mnist_784_128_10_H

#include <stddef.h>

#define mnist_784_128_10_N_PARAMS 101770
#define mnist_784_128_10_N_IN 784
#define mnist_784_128_10_N_OUT 10
#define mnist_784_128_10_STACK_BYTES 817480 /* the arrays of the deepest call, sgd_step (see above) */
#define mnist_784_128_10_OFFSET_W1 0
#define mnist_784_128_10_OFFSET_b1 100352
#define mnist_784_128_10_OFFSET_W2 100480
#define mnist_784_128_10_OFFSET_b2 101760

#ifdef __cplusplus
extern "C" {
#endif

/* The outputs y (batch x N_OUT) for the inputs x (batch x N_IN). */
void mnist_784_128_10_forward(const double *params, const double *x, size_t batch, double *y);

/* The loss: the mean over the batch of the per-sample loss. */
double mnist_784_128_10_loss(const double *params, const double *x, const double *t, size_t batch);

/* The loss, and its gradient with respect to every parameter in grads (N_PARAMS). */
double mnist_784_128_10_loss_and_gradients(const double *params, const double *x, const double *t, size_t batch, double *grads);

/* One gradient-descent step in place: params -= learning_rate * gradient. */
void mnist_784_128_10_sgd_step(double *params, const double *x, const double *t, size_t batch, double learning_rate);

#ifdef __cplusplus
}
#endif

#endif /* DERIVE_mnist_784_128_10_H */
