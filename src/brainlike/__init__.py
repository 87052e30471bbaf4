"""brainlike: brain-like functional organization of artificial neurons in (V)LMs.

A declarative, data-versioned experiment registry. Layers, in pipeline order (lower never
imports higher): data -> validation -> stimulus -> activations -> patterns -> encoding ->
networks -> metrics -> registry -> report -> cli.
"""

__version__ = "0.1.0"
