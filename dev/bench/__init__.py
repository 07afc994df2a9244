"""The benchmark: ``python -m bench run|scale`` (``make bench``) and the per-source scripts beside it."""
