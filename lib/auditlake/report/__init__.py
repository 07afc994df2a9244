"""The daily audit report: one self-contained HTML page with tables and charts for one UTC day.

``data`` reads the lake (the daily aggregates, the run records, the quarantine, the day's
governance changes and, when it exists, the findings table) into small plain-Python tables;
``charts`` draws them with matplotlib as inline SVG; ``html`` renders the page; ``job`` is the
command-line entry point (``jobs/audit_report.py``, ``auditlake-audit-report``).
"""
