"""The ``rlhf-gym`` command line: one module per group of commands."""
