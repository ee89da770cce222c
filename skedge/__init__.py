"""skedge: batch-trained scikit-learn pipelines, exported with proven parity, predicted on the device.

The runtime (``skedge.runtime``) is the only part an app imports. The trainer and
exporter need the ``train`` extra.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
