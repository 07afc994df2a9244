"""Fault tooling: the mutated input corpus."""
