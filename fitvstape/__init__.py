"""fitvstape: train one linear regression with ``model.fit()`` and with a GradientTape loop.

The two paths start from the same weights, see the same batches in the same order, and are
compared epoch by epoch. Set up the same way they agree bit for bit on CPU.
"""

__version__ = "0.1.0"
