"""Algorithms beyond plain RL, one module each: the KL anchor, CPL, best-of-N and WARP."""
