"""The reward model: a bootstrapped ensemble, one likelihood per kind of evidence, and its
pickle-free checkpoints.
"""
