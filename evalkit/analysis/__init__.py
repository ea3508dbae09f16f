"""Analyses over traffic, runs and the history store (each module imports numpy/scipy lazily)."""
