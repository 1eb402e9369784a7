"""Feedback: synthetic teachers, the effort model, collecting a round of feedback, and the durable
store with its portable formats.
"""
