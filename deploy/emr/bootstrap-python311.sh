#!/bin/bash
# EMR bootstrap action: install Python 3.11 at /usr/bin/python3.11 on every node (Amazon Linux 2023).
# The venv-pack archive (dist/auditlake-pyenv.tar.gz) links its bin/python to that interpreter.
set -euo pipefail
sudo dnf install -y python3.11
