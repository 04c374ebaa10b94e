"""Generator of the refloss conformance fixtures (format v1).

Run from the repository root::

    python -m conformance.generator          # write every fixture file and the README table
    python -m conformance.generator --check  # regenerate in memory and compare byte for byte

The expected values come from :mod:`.oracle` (mpmath, 50 digits), which never imports
refloss.
"""
