"""The ``ocec-jobs`` command: one module per subcommand (see ``main.py`` for how they register)."""
