"""Experiments: sweeps of runs, tidy results tables, statistics, figures and reports."""
