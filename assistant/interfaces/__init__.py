"""The ways in: the ``assistant`` command (``cli``) and the browser chat (``ui``), both thin over ``assistant.api``."""
