"""Private: see perdure/__init__.py for the layers."""
