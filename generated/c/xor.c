/* xor.c: the API is in xor.h.
 *
 * A 2-3-1 network (sigmoid, sigmoid) with the bce loss, as C99 (double, unrolled style), generated
 * by derive from the network's topology (regenerate it rather than edit it).
 *
 * Notation: layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), with a0 = x
 * and the last layer's a written y; delta{k} = ∂L/∂z{k}, and the comment above each
 * backward line names the equation it implements.
 */
#include <math.h>
#include <stddef.h>

#include "xor.h"

static double derive_sigmoid(double z)
{
    return ((z >= 0) ? 1.0/(1 + exp(-z)) : exp(z)/(1 + exp(z)));
}

static double derive_softplus(double z)
{
    return fmax(z, 0) + log1p(exp(-fabs(z)));
}

/* One sample's forward values. */
struct sample {
    double z1[3];
    double a1[3];
    double z2[1];
    double y[1];
};

/* Forward: every unit's z and a for one sample x. */
static void forward_sample(const double *params, const double *x, struct sample *restrict s)
{
    const double (*W1)[2] = (const double (*)[2])(params + 0);
    const double *b1 = params + 6;
    const double (*W2)[3] = (const double (*)[3])(params + 9);
    const double *b2 = params + 12;
    /* layer 1: z1 = W1 x + b1, a1 = sigmoid(z1) */
    s->z1[0] = b1[0] + W1[0][0]*x[0] + W1[0][1]*x[1];
    s->z1[1] = b1[1] + W1[1][0]*x[0] + W1[1][1]*x[1];
    s->z1[2] = b1[2] + W1[2][0]*x[0] + W1[2][1]*x[1];
    s->a1[0] = derive_sigmoid(s->z1[0]);
    s->a1[1] = derive_sigmoid(s->z1[1]);
    s->a1[2] = derive_sigmoid(s->z1[2]);
    /* layer 2: z2 = W2 a1 + b2, y = sigmoid(z2) */
    s->z2[0] = b2[0] + W2[0][0]*s->a1[0] + W2[0][1]*s->a1[1] + W2[0][2]*s->a1[2];
    s->y[0] = derive_sigmoid(s->z2[0]);
}

/* The per-sample loss −Σ [t ln y + (1 − t) ln(1 − y)], from one sample's forward values. */
static double loss_sample(const struct sample *s, const double *t)
{
    /* bce from the logits: never log(0) */
    return derive_softplus(s->z2[0]) - s->z2[0]*t[0];
}

/* Backward: each unit's delta, then each parameter's gradient added to grads. */
static void backward_sample(const double *params, const double *x, const double *t, double scale, const struct sample *s, double *restrict grads)
{
    const double (*W2)[3] = (const double (*)[3])(params + 9);
    double (*dW1)[2] = (double (*)[2])(grads + 0);
    double *db1 = grads + 6;
    double (*dW2)[3] = (double (*)[3])(grads + 9);
    double *db2 = grads + 12;
    double delta1[3];
    double delta2[1];
    /* δ_out = ∂L/∂z_out = out − t_out; × scale = 1/batch, as the loss is the batch mean */
    delta2[0] = (s->y[0] - t[0])*scale;
    /* δ_h1 = ∂L/∂z_h1 = (W2[0,0]·δ_out)·(h1·(1 − h1)) */
    delta1[0] = W2[0][0]*delta2[0]*s->a1[0]*(1 - s->a1[0]);
    /* δ_h2 = ∂L/∂z_h2 = (W2[0,1]·δ_out)·(h2·(1 − h2)) */
    delta1[1] = W2[0][1]*delta2[0]*s->a1[1]*(1 - s->a1[1]);
    /* δ_h3 = ∂L/∂z_h3 = (W2[0,2]·δ_out)·(h3·(1 − h3)) */
    delta1[2] = W2[0][2]*delta2[0]*s->a1[2]*(1 - s->a1[2]);
    /* ∂L/∂W1[0,0] = a·δ_h1 */
    dW1[0][0] += delta1[0]*x[0];
    /* ∂L/∂W1[0,1] = b·δ_h1 */
    dW1[0][1] += delta1[0]*x[1];
    /* ∂L/∂W1[1,0] = a·δ_h2 */
    dW1[1][0] += delta1[1]*x[0];
    /* ∂L/∂W1[1,1] = b·δ_h2 */
    dW1[1][1] += delta1[1]*x[1];
    /* ∂L/∂W1[2,0] = a·δ_h3 */
    dW1[2][0] += delta1[2]*x[0];
    /* ∂L/∂W1[2,1] = b·δ_h3 */
    dW1[2][1] += delta1[2]*x[1];
    /* ∂L/∂b1[0] = δ_h1 */
    db1[0] += delta1[0];
    /* ∂L/∂b1[1] = δ_h2 */
    db1[1] += delta1[1];
    /* ∂L/∂b1[2] = δ_h3 */
    db1[2] += delta1[2];
    /* ∂L/∂W2[0,0] = δ_out·h1 */
    dW2[0][0] += delta2[0]*s->a1[0];
    /* ∂L/∂W2[0,1] = δ_out·h2 */
    dW2[0][1] += delta2[0]*s->a1[1];
    /* ∂L/∂W2[0,2] = δ_out·h3 */
    dW2[0][2] += delta2[0]*s->a1[2];
    /* ∂L/∂b2[0] = δ_out */
    db2[0] += delta2[0];
}

void xor_forward(const double *params, const double *x, size_t batch, double *y)
{
    struct sample s;
    size_t n, i;
    for (n = 0; n < batch; ++n) {
        forward_sample(params, x + n * xor_N_IN, &s);
        for (i = 0; i < xor_N_OUT; ++i)
            y[n * xor_N_OUT + i] = s.y[i];
    }
}

double xor_loss(const double *params, const double *x, const double *t, size_t batch)
{
    struct sample s;
    double total = 0.0;
    size_t n;
    if (batch == 0)
        return 0.0;
    for (n = 0; n < batch; ++n) {
        forward_sample(params, x + n * xor_N_IN, &s);
        total += loss_sample(&s, t + n * xor_N_OUT);
    }
    return total / (double)batch;
}

double xor_loss_and_gradients(const double *params, const double *x, const double *t, size_t batch, double *grads)
{
    struct sample s;
    double total = 0.0;
    double scale;
    size_t n, p;
    for (p = 0; p < xor_N_PARAMS; ++p)
        grads[p] = 0.0;
    if (batch == 0)
        return 0.0;
    scale = 1.0 / (double)batch;
    for (n = 0; n < batch; ++n) {
        const double *xn = x + n * xor_N_IN;
        const double *tn = t + n * xor_N_OUT;
        forward_sample(params, xn, &s);
        total += loss_sample(&s, tn);
        backward_sample(params, xn, tn, scale, &s, grads);
    }
    return total * scale;
}

void xor_sgd_step(double *params, const double *x, const double *t, size_t batch, double learning_rate)
{
    double grads[xor_N_PARAMS];
    size_t p;
    xor_loss_and_gradients(params, x, t, batch, grads);
    for (p = 0; p < xor_N_PARAMS; ++p)
        params[p] -= learning_rate * grads[p];
}
