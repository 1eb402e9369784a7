"""Tasks: the registry of presets, the fixed horizon, scripted experts, state snapshots, and the
project's own environments (``envs/``).
"""
