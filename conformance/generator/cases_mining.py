"""Valid retrieval-loss cases: hard negatives, numerics, float64-only inputs, NaN."""

from __future__ import annotations

import numpy as np

from .cases_common import IDS, C, M, P, Q, W, case, hard_inputs, hit_inputs, qc
from .model import Case, Draw, f64, i64, mask


def hard_negatives() -> list[Case]:
    """Hard-negative mining: ties, a weak positive, order of the corrections."""
    out: list[Case] = []
    add = out.append
    x = hard_inputs()
    add(
        case(
            "k=1: the positive of row 0 is the smallest logit; columns 2 and 3 tie",
            [
                "HardNegatives",
                "HardNegativePositiveKept",
                "HardNegativeTiesLowerIndex",
                "ExtraNegatives",
            ],
            x,
            "hard_negatives",
            {"num_hard_negatives": 1},
        )
    )
    x = hard_inputs()
    add(
        case(
            "k=2 on dyadic inputs with exact ties",
            [
                "HardNegatives",
                "HardNegativePositiveKept",
                "HardNegativeTiesLowerIndex",
                "ExtraNegatives",
            ],
            x,
            "hard_negatives",
            {"num_hard_negatives": 2},
        )
    )
    x = hard_inputs()
    add(
        case(
            "k=3 with temperature 0.5",
            [
                "HardNegatives",
                "HardNegativePositiveKept",
                "HardNegativeTiesLowerIndex",
                "Temperature",
                "ExtraNegatives",
            ],
            x,
            "hard_negatives",
            {"num_hard_negatives": 3, "temperature": 0.5},
        )
    )
    x = hard_inputs()
    add(
        case(
            "k=5 = N-1 keeps every column",
            ["HardNegatives", "HardNegativesKeepAll", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 5},
        )
    )
    x = hard_inputs()
    add(
        case(
            "k=100 > N-1 keeps every column",
            ["HardNegatives", "HardNegativesKeepAll", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 100},
        )
    )
    x = hard_inputs()
    x[P] = f64([0.5, 0.5, 0.25, 0.25, 0.0078125, 0.5])
    add(
        case(
            "k=2 after logQ: column 4's small p lifts it into the top 2",
            [
                "HardNegatives",
                "HardNegativesAfterCorrections",
                "HardNegativePositiveKept",
                "HardNegativeTiesLowerIndex",
                "LogQ",
                "ExtraNegatives",
            ],
            x,
            "hard_negatives",
            {"num_hard_negatives": 2},
        )
    )
    x = hard_inputs()
    x[IDS] = i64([1, 2, 1, 4, 5, 6])
    add(
        case(
            "k=1 after accidental hits: row 0's best negative (column 2) is a hit",
            ["HardNegatives", "HardNegativesAfterCorrections", "AccidentalHit", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 1},
        )
    )
    x = hard_inputs()
    x[M] = mask([[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]])
    add(
        case(
            "k=1 after score_mask: masked negatives are not selected",
            ["HardNegatives", "HardNegativesAfterCorrections", "ScoreMask", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 1},
        )
    )
    x = hard_inputs()
    x[M] = mask([[1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    add(
        case(
            "k=3 when row 0 has only one unmasked negative",
            ["HardNegatives", "ScoreMask", "HardNegativesAfterCorrections", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 3},
        )
    )
    d = Draw(601)
    x = qc(d, 4, 10, 6)
    x[W] = f64([1.0, 2.0, 0.5, 1.0])
    add(
        case(
            "k=3 on random inputs, weights, reduction='mean'",
            ["HardNegatives", "SampleWeight", "MeanDividesByBatch", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 3, "reduction": "mean"},
            draw=d,
        )
    )
    d = Draw(602)
    x = qc(d, 4, 8, 6)
    x[C][0] = -x[Q][0]
    x[C][2] = -x[Q][2] * 2.0
    add(
        case(
            "k=2 on random inputs; rows 0 and 2 have anti-aligned positives",
            ["HardNegatives", "HardNegativePositiveKept", "ExtraNegatives"],
            x,
            "hard_negatives",
            {"num_hard_negatives": 2},
            draw=d,
            note="C[0] = -Q[0], C[2] = -2*Q[2]",
        )
    )
    return out


def large_logits() -> list[Case]:
    """Large logits and small temperatures."""
    out: list[Case] = []
    add = out.append
    d = Draw(701)
    add(case("logits ~1e4", ["LargeLogits"], qc(d, 4, 6, 8, 32.0), "large_logits", draw=d))
    d = Draw(702)
    x = qc(d, 4, 4, 8, 32.0)
    x[C][1] = -x[Q][1]
    x[C][3] = x[Q][3]
    add(
        case(
            "logits ~1e4, positives of rows 1 and 3 far below / above the negatives",
            ["LargeLogits"],
            x,
            "large_logits",
            draw=d,
            note="C[1] = -Q[1], C[3] = Q[3]",
        )
    )
    d = Draw(703)
    add(
        case(
            "temperature 0.01 gives logits in the hundreds",
            ["SmallTemperature", "Temperature"],
            qc(d, 4, 5, 4),
            "large_logits",
            {"temperature": 0.01},
            draw=d,
        )
    )
    x, d = hit_inputs(704)
    x[Q] = x[Q] * 64.0
    x[C] = x[C] * 64.0
    add(
        case(
            "logits ~1e4 with accidental hits",
            ["LargeLogits", "AccidentalHit", "NegInfMasking", "ExtraNegatives"],
            x,
            "large_logits",
            draw=d,
            note="C[5] = 4*Q[0], C[6] = 2*Q[0], then both scaled by 64",
        )
    )
    return out


def float64_only() -> list[Case]:
    """Inputs that are not float32-representable."""
    out: list[Case] = []
    add = out.append
    d = Draw(801)
    add(
        case(
            "float64 embeddings not representable in float32",
            ["Float64Only", "Basic"],
            qc(d, 4, 6, 5, float64=True),
            "float64_only",
            draw=d,
            float64_only=True,
        )
    )
    d = Draw(802)
    x = qc(d, 3, 5, 4, 0.01, float64=True)
    add(
        case(
            "float64 inputs with temperature 1e-5",
            ["Float64Only", "Temperature", "LargeLogits"],
            x,
            "float64_only",
            {"temperature": 1e-5},
            draw=d,
            float64_only=True,
        )
    )
    d = Draw(803)
    x = qc(d, 3, 4, 3, float64=True)
    x[P] = d.rng.uniform(0.001, 0.9, 4)
    d.dists.append("uniform(0.001,0.9) float64 [4]")
    add(
        case(
            "float64 inputs and probabilities with logQ",
            ["Float64Only", "LogQ"],
            x,
            "float64_only",
            draw=d,
            float64_only=True,
        )
    )
    return out


def nan_propagation() -> list[Case]:
    """NaN propagation."""
    out: list[Case] = []
    add = out.append
    d = Draw(901)
    x = qc(d, 3, 4, 4)
    x[Q][1, 2] = np.nan
    add(
        case(
            "NaN in query_embeddings[1, 2] propagates to the loss",
            ["NaNPropagates"],
            x,
            "nan",
            draw=d,
        )
    )
    d = Draw(902)
    x = qc(d, 3, 5, 4)
    x[C][4, 0] = np.nan
    add(
        case(
            "NaN in an extra negative propagates to the loss",
            ["NaNPropagates", "ExtraNegatives"],
            x,
            "nan",
            draw=d,
        )
    )
    return out
