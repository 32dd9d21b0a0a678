"""The ``spendgate`` command line: thin commands over the same functions the API uses."""
