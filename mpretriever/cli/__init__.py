"""The ``mpr`` command line."""
