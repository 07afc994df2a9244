"""``make athena-check``: the generated Athena DDL and query pack judged by a real Trino on loopback."""
