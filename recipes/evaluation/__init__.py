"""Accuracy studies of the shipped models on data kept apart from their builds."""
