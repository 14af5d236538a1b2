"""prism-edge: federated training of masked generators (PRISM) for small devices."""

__version__ = "0.1.0"
