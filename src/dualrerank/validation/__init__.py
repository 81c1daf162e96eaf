"""Data validation with Great Expectations: the contract as an in-code suite (``suite.py``), the derived
frames it runs on (``frames.py``), the GX plumbing (``gx_runner.py``), the report (``report.py``) and
the entry points ``validate_table`` / ``validate_file`` (``check.py``). See docs/validation.md."""
