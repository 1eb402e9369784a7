"""Data from the agent's own behaviour: rollouts into trajectories, segments cut from them, and
the queries built from segments.
"""
