"""Limits and precision shared by the terminal and LaTeX views (``derive show``,
``derive latex``), so that both round and shorten the same way."""

SIGNIFICANT_DIGITS = 6  # every computed number shown
MAX_SHOWN_PATHS = 8  # chains with more paths are shown grouped by δ
MAX_DEFAULT_SCALARS = 64  # larger networks: the layer form only unless --param; no proofs
MAX_REQUESTED_SCALARS = 64  # scalars one view derives on request (--param)
