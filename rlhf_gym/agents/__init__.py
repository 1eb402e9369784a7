"""SB3 agents: the algorithm registry, callbacks, replay relabelling, behaviour cloning, critics
and evaluation on the true reward.
"""
