"""Helpers shared by the tests: generated test signals and their expected labels."""
