"""The covr-datagen test suite (a package, so that ``tests.helpers`` imports the same way under
plain ``pytest`` and ``python -m pytest``)."""
