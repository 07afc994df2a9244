"""Errors a job reports as one clear line, each with its own exit code."""

from __future__ import annotations


class AuditlakeError(Exception):
    """Base class: a failure the job explains in one line and exits with ``exit_code``."""

    exit_code = 1


class UsageError(AuditlakeError):
    """Bad command line: a missing or malformed argument."""

    exit_code = 2


class ConfigError(AuditlakeError):
    """Unknown environment or an invalid configuration file."""

    exit_code = 2


class SourceError(AuditlakeError):
    """The source location cannot be read at all (not one bad file: a bad file is quarantined)."""

    exit_code = 4


class QualityGateError(AuditlakeError):
    """A critical data-quality expectation failed; nothing was committed."""

    exit_code = 3


class ReconciliationError(AuditlakeError):
    """A run's counts do not balance (read != loaded + quarantined + duplicates)."""

    exit_code = 5
