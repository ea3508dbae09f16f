"""Analyses over runs and the history store: time of day, change points, load ladders (imported lazily)."""
