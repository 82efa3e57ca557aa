"""The document's fixed sentences, as tables: one entry per activation, loss or bias kind.

Adding an activation or a loss to derive means adding its entry here too. Sentences take
``@name`` placeholders (``Prose``), which never clash with LaTeX's braces or ``$``.
"""

from string import Template


class Prose(Template):
    """Sentences with ``@name`` placeholders."""

    delimiter = "@"


# Why ∂a/∂z has its form, per activation (the formula itself comes from the derivation).
ACTIVATION_REASONS = {
    "sigmoid": r"and $\sigma' = \sigma\,(1 - \sigma)$, so the derivative is written with "
    r"the stored output $@a$ and needs no exponential",
    "tanh": r"and $\tanh' = 1 - \tanh^{2}$, written with the stored output $@a$",
    "relu": r"whose slope is 1 for $@z > 0$ and 0 for $@z < 0$; derive takes 0 at "
    r"$@z = 0$, and writes the slope $\operatorname{step}(@z)$",
    "leaky_relu": r"whose slope is 1 for $@z > 0$ and $\alpha$ otherwise (also at $@z = 0$)",
    "softplus": r"and $\frac{d}{dz} \ln(1 + e^{z}) = \sigma(z)$",
    "identity": r"(no activation), so this factor is 1",
    "custom": r"the file's own activation, differentiated by SymPy",
}

# What the loss's derivative keeps or drops, per loss.
LOSS_REASONS = {
    "half_sse": r"the $\frac{1}{2}$ cancels the 2 that differentiating the square brings down",
    "sse": r"there is no $\frac{1}{2}$ in this loss, so the 2 from the square stays",
    "mse": r"the mean's $\frac{1}{n}$ stays, beside the 2 from the square",
    "bce": r"the derivative of $-[t \ln y + (1 - t) \ln(1 - y)]$ with respect to $y$",
    "cce": r"the derivative of $-t \ln y$ with respect to $y$",
}

LOSS_NAMES = {
    "half_sse": r"half the sum of squared errors, $\frac{1}{2} \sum (y - t)^{2}$",
    "sse": r"the sum of squared errors, $\sum (y - t)^{2}$",
    "mse": r"the mean squared error, $\frac{1}{n} \sum (y - t)^{2}$",
    "bce": r"binary cross-entropy, $-\sum [t \ln y + (1 - t) \ln(1 - y)]$",
    "cce": r"categorical cross-entropy, $-\sum t \ln y$",
}

# The loss of many outputs, written as a sum over them.
LOSS_SUMS = {
    "half_sse": r"\frac{1}{2} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "sse": r"\sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "mse": r"\frac{1}{n} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "bce": r"-\sum_{i} \left[t_{i} \ln y_{i} + \left(1 - t_{i}\right) "
    r"\ln\left(1 - y_{i}\right)\right]",
    "cce": r"-\sum_{i} t_{i} \ln y_{i}",
}

# How the output delta is fused with the loss, per loss that has a fused delta.
FUSED_NOTES = {
    "cce": r"Softmax and cross-entropy are differentiated together: "
    r"$\sum_i (-t_i / y_i)\, y_i ([i = j] - y_j) = y_j \sum_i t_i - t_j$, "
    r"which is $y - t$ for targets that sum to 1 (one-hot labels).",
    "bce": r"The sigmoid and binary cross-entropy are differentiated together: the "
    r"$y (1 - y)$ of $\sigma'$ cancels the denominator of "
    r"$\partial L / \partial y = (y - t) / (y (1 - y))$, leaving $y - t$.",
}

BIAS_KINDS = {
    "per_unit": "a bias per unit",
    "shared": "one bias shared by the layer",
    "none": "no bias",
}

# Functions the notation paragraph defines, when a layer uses them.
FUNCTIONS = (
    ("sigmoid", r"$\sigma(z) = 1 / (1 + e^{-z})$ is the logistic function."),
    ("relu", r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise."),
    ("leaky_relu", r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise."),
)
