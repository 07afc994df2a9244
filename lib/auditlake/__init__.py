"""auditlake: AWS audit and operations logs into query-ready lake tables."""

__version__ = "0.1.0"
