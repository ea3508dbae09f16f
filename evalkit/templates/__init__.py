"""Files evalkit writes into users' repositories (the prompt-PR workflow)."""
