"""The reproduction harness around ``vsboost``: command line, run records, sweeps, reports."""
