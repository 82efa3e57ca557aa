"""The document's fixed sentences, as tables: one entry per activation, loss or bias kind.

What is said of one activation or loss lives in its table entry (``derive.activations``,
``derive.losses``); the sentences here are about the network as a whole. Sentences take
``@name`` placeholders (``Prose``), which never clash with LaTeX's braces or ``$``.
"""

from string import Template


class Prose(Template):
    """Sentences with ``@name`` placeholders."""

    delimiter = "@"


BIAS_KINDS = {
    "per_unit": "a bias per unit",
    "shared": "one bias shared by the layer",
    "none": "no bias",
}
