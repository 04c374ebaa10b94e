"""Private helpers: namespace resolution, input validation, dtype and device utilities."""
