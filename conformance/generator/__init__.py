"""Generator of the refloss conformance fixtures (format v1).

Run from the repository root::

    python -m conformance.generator          # write every fixture file and the README table
    python -m conformance.generator --check  # regenerate in memory and compare byte for byte

The file list and each file's metadata come from ``refloss._registry.FAMILIES``;
:mod:`.families` adds each family's cases and oracle evaluators.  The expected values
come from :mod:`.oracle` (mpmath, evaluated at 50 and at 100 digits, which must round to
the same float64), which never imports refloss; :mod:`.crosscheck` compares every
analytic gradient with central differences of the oracle loss.
"""
