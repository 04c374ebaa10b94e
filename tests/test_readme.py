"""The README's usage example runs as written and computes what the mpmath oracle computes."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import oracle

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_matches_the_oracle():
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    scope: dict[str, object] = {}
    exec(code, scope)
    q, c = scope["q"], scope["c"]
    expected = oracle.retrieval_loss(
        q,
        c,
        candidate_sampling_probability=scope["p"],
        candidate_ids=scope["ids"],
        sample_weight=np.array([1.0, 0.5, 2.0, 0.25]),
        temperature=0.5,
        num_hard_negatives=2,
    )
    np.testing.assert_allclose(float(scope["loss"]), expected, rtol=1e-12)
    plain = oracle.retrieval(q, c, temperature=0.5)
    np.testing.assert_allclose(float(scope["value"]), plain.loss, rtol=1e-12)
    np.testing.assert_allclose(scope["d_q"], plain.dq, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scope["d_c"], plain.dc, rtol=1e-10, atol=1e-12)
