"""Text detectors shared by the linter, provider messages and reports: personal data and secrets, token counts."""
