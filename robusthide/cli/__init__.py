"""The ``robusthide`` command line."""
