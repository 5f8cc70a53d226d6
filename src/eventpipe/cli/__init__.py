"""The ``eventpipe`` command line: thin commands over the stage functions."""
