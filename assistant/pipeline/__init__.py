"""The steps of an answer, each its own module; ``answering`` runs them in order."""
