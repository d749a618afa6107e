"""The run report: one self-contained HTML page per run (``afcot report RUN``)."""
