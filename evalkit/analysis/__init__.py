"""Analyses over traffic, runs and the history store: coverage, router drift, time of day, change points,
load ladders (each module imports numpy/scipy lazily)."""
