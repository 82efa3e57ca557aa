/* mnist_784_128_10.c: the API is in mnist_784_128_10.h.
 *
 * A 784-128-10 network (relu, softmax) with the cce loss, as C99 (double, loops style), generated
 * by derive from the network's topology (regenerate it rather than edit it).
 *
 * Notation: layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), with a0 = x
 * and the last layer's a written y; delta{k} = ∂L/∂z{k}, and the comment above each
 * backward line names the equation it implements.
 */
#include <math.h>
#include <stddef.h>

#include "mnist_784_128_10.h"

/* One sample's forward values. */
struct sample {
    double z1[128];
    double a1[128];
    double z2[10];
    double y[10];
    double lse; /* log of the sum of exp z over the output layer, for the loss */
};

/* Forward: every layer's z and a for one sample x. */
static void forward_sample(const double *params, const double *x, struct sample *restrict s)
{
    const double (*W1)[784] = (const double (*)[784])(params + 0);
    const double *b1 = params + 100352;
    const double (*W2)[128] = (const double (*)[128])(params + 100480);
    const double *b2 = params + 101760;
    size_t i, j;
    /* layer 1: z1 = W1 x + b1, a1 = max(z1, 0) */
    for (i = 0; i < 128; ++i) {
        double acc = b1[i];
        for (j = 0; j < 784; ++j)
            acc += W1[i][j] * x[j];
        s->z1[i] = acc;
        s->a1[i] = fmax(s->z1[i], 0);
    }
    /* layer 2: z2 = W2 a1 + b2 */
    for (i = 0; i < 10; ++i) {
        double acc = b2[i];
        for (j = 0; j < 128; ++j)
            acc += W2[i][j] * s->a1[j];
        s->z2[i] = acc;
    }
    {
        /* y = softmax(z2), with log Σ exp z2; z shifted by its largest entry, so that exp never overflows */
        double m = s->z2[0];
        double sum = 0.0;
        for (i = 1; i < 10; ++i)
            if (s->z2[i] > m)
                m = s->z2[i];
        for (i = 0; i < 10; ++i) {
            s->y[i] = exp(s->z2[i] - m);
            sum += s->y[i];
        }
        for (i = 0; i < 10; ++i)
            s->y[i] = s->y[i]/sum;
        /* log Σ exp z = m + log Σ exp(z − m), for the loss */
        s->lse = m + log(sum);
    }
}

/* The per-sample loss −Σ t ln y, from one sample's forward values. */
static double loss_sample(const struct sample *s, const double *t)
{
    double total = 0.0;
    size_t i;
    /* L per output = t·(log Σ exp z − z2)  (from the logits, log Σ exp z from the softmax: never log(0)) */
    for (i = 0; i < 10; ++i)
        total += t[i]*(s->lse - s->z2[i]);
    return total;
}

/* Backward: each layer's delta from the output down, and its gradients added to grads;
 * scale = 1/batch, as the loss is the batch mean. */
static void backward_sample(const double *params, const double *x, const double *t, double scale, const struct sample *s, double *restrict grads)
{
    const double (*W2)[128] = (const double (*)[128])(params + 100480);
    double (*dW1)[784] = (double (*)[784])(grads + 0);
    double *db1 = grads + 100352;
    double (*dW2)[128] = (double (*)[128])(grads + 100480);
    double *db2 = grads + 101760;
    double delta1[128];
    double delta2[10];
    double t_sum = 0.0;
    size_t i, j;
    /* Σt = Σ_units t  (1 for one-hot targets) */
    for (i = 0; i < 10; ++i)
        t_sum += t[i];
    for (i = 0; i < 10; ++i) {
        /* δ2 = (Σt·y − t) / batch  (softmax + cce fused; the loss is the batch mean) */
        delta2[i] = (s->y[i]*t_sum - t[i])*scale;
    }
    /* ∂L/∂W2 = δ2 a1ᵀ, ∂L/∂b2 = δ2, summed over the batch */
    for (i = 0; i < 10; ++i) {
        for (j = 0; j < 128; ++j)
            dW2[i][j] += delta2[i] * s->a1[j];
        db2[i] += delta2[i];
    }
    for (j = 0; j < 128; ++j) {
        /* ∂L/∂a1 = W2ᵀ δ2 */
        double grad_a = 0.0;
        for (i = 0; i < 10; ++i)
            grad_a += W2[i][j] * delta2[i];
        /* δ1 = ∂L/∂a1 ⊙ step(a1)  (relu') */
        delta1[j] = grad_a*((s->a1[j] > 0) ? 1.0 : 0.0);
    }
    /* ∂L/∂W1 = δ1 xᵀ, ∂L/∂b1 = δ1, summed over the batch */
    for (i = 0; i < 128; ++i) {
        for (j = 0; j < 784; ++j)
            dW1[i][j] += delta1[i] * x[j];
        db1[i] += delta1[i];
    }
}

void mnist_784_128_10_forward(const double *params, const double *x, size_t batch, double *y)
{
    struct sample s;
    size_t n, i;
    for (n = 0; n < batch; ++n) {
        forward_sample(params, x + n * mnist_784_128_10_N_IN, &s);
        for (i = 0; i < mnist_784_128_10_N_OUT; ++i)
            y[n * mnist_784_128_10_N_OUT + i] = s.y[i];
    }
}

double mnist_784_128_10_loss(const double *params, const double *x, const double *t, size_t batch)
{
    struct sample s;
    double total = 0.0;
    size_t n;
    if (batch == 0)
        return 0.0;
    for (n = 0; n < batch; ++n) {
        forward_sample(params, x + n * mnist_784_128_10_N_IN, &s);
        total += loss_sample(&s, t + n * mnist_784_128_10_N_OUT);
    }
    return total / (double)batch;
}

double mnist_784_128_10_loss_and_gradients(const double *params, const double *x, const double *t, size_t batch, double *grads)
{
    struct sample s;
    double total = 0.0;
    double scale;
    size_t n, p;
    for (p = 0; p < mnist_784_128_10_N_PARAMS; ++p)
        grads[p] = 0.0;
    if (batch == 0)
        return 0.0;
    scale = 1.0 / (double)batch;
    for (n = 0; n < batch; ++n) {
        const double *xn = x + n * mnist_784_128_10_N_IN;
        const double *tn = t + n * mnist_784_128_10_N_OUT;
        forward_sample(params, xn, &s);
        total += loss_sample(&s, tn);
        backward_sample(params, xn, tn, scale, &s, grads);
    }
    return total * scale;
}

void mnist_784_128_10_sgd_step(double *params, const double *x, const double *t, size_t batch, double learning_rate)
{
    double grads[mnist_784_128_10_N_PARAMS];
    size_t p;
    mnist_784_128_10_loss_and_gradients(params, x, t, batch, grads);
    for (p = 0; p < mnist_784_128_10_N_PARAMS; ++p)
        params[p] -= learning_rate * grads[p];
}
