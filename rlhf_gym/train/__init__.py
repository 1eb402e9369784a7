"""Training: the one RLHF loop (collect, query, ask, fit, train, evaluate), the ``RLHF`` run
that drives it on a schedule, config resolution and run folders.
"""
