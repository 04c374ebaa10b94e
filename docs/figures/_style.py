"""Shared look and command line of the figure scripts in ``docs/figures/``.

Every ``fig_<name>.py`` computes its data with refloss (NumPy backend, fixed seeds) in a
``compute()`` function and plots it in ``main(outdir)``; run as a script,
``python docs/figures/fig_<name>.py OUTDIR`` writes ``OUTDIR/<name>.png``. The docs build
runs every script this way. matplotlib is imported only when a figure is drawn, so
``compute()`` can be imported without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DPI = 110

# Colour-blind-safe (Okabe-Ito): reference, without correction, with correction, extra.
COLORS = ("#000000", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00")

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend, with the shared style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    return plt


def save(fig: Any, outdir: str | Path, name: str) -> Path:
    """Write ``fig`` to ``outdir/<name>.png`` (the folder is created) and close it."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    # Fixed metadata: the same inputs give the same bytes.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    fig.clear()
    pyplot().close(fig)
    return path


def cli(main: Callable[[str | Path], Path], argv: list[str] | None = None) -> int:
    """``python fig_<name>.py OUTDIR``: run ``main(OUTDIR)`` and print the written path."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        name = Path(sys.argv[0]).name
        print(f"usage: python {name} OUTDIR", file=sys.stderr)
        return 2
    print(main(args[0]))
    return 0
