"""brainlike: brain-like functional organization of artificial neurons in (V)LMs.

A declarative, data-versioned experiment registry. Layers, in pipeline order (lower never
imports higher): data -> validation -> stimulus -> activations -> patterns -> encoding ->
networks -> metrics -> registry -> report -> cli.
"""

from ._utils.offline import set_kernel_env

# before any submodule imports numpy or torch: the same float kernels on every CPU (README,
# "Reproducible outputs")
set_kernel_env()

__version__ = "0.1.0"
