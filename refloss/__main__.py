"""``python -m refloss``: the ``refloss`` command."""

from refloss.cli import main

raise SystemExit(main())
