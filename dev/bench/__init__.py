"""The benchmark: ``python -m bench run|scale`` (``make bench``, ``make bench-large``) and its baselines."""
