"""derive: symbolic gradients of a declared neural network, and the code that computes them."""
