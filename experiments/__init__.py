"""Experiments and benchmarks: scripts run as ``python experiments/NAME.py``.  A package only so that the
tests import the independent PyTorch reference as ``experiments.torch_reference`` (no sys.path edits)."""
