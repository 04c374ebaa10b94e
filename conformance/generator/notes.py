"""Flag definitions: every flag a fixture test may carry, with its kind and meaning.

A file's ``notes`` holds exactly the flags its tests use.  Add new flags here; never
change the meaning of an existing one (that would be a breaking change).
"""

from __future__ import annotations

BASIC = "BASIC"
EDGE_CASE = "EDGE_CASE"
CONVENTION = "CONVENTION"
NUMERICS = "NUMERICS"
INVALID_INPUT = "INVALID_INPUT"

NOTES: dict[str, tuple[str, str]] = {
    # Basic coverage.
    "Basic": (BASIC, "Generic case with random inputs and default options."),
    "Temperature": (BASIC, "Scores are divided by the temperature before any correction."),
    "SampleWeight": (BASIC, "Per-row losses are multiplied by sample_weight before reduction."),
    "ReductionNone": (BASIC, "reduction='none' returns the vector of weighted per-row losses."),
    "LogQ": (BASIC, "Sampling-bias correction: log(clip(p)) is subtracted from the logits."),
    "AccidentalHit": (BASIC, "A negative column shares the row's positive id and is masked."),
    "ScoreMask": (BASIC, "Entries where score_mask is False are masked."),
    "HardNegatives": (BASIC, "Only the positive and the k largest negatives of each row are kept."),
    "ClosedForm": (BASIC, "Small hand-written case whose value also has a closed form."),
    "IntegerLabels": (
        BASIC,
        "labels is an integer array (B,): row i's target is column labels[i], in [0, N).",
    ),
    "LabelWeights": (
        BASIC,
        "labels is a (B, N) matrix of label weights y >= 0: loss_i = sum_j y_ij (lse_i - S_ij).",
    ),
    "SeveralPositives": (BASIC, "A row of label weights has more than one positive entry."),
    "NumTrue": (
        BASIC,
        "labels has num_true > 1 columns: each true class has label 1/num_true.",
    ),
    "NoLogQ": (BASIC, "subtract_log_q=False: no expected count is used or needed."),
    "SampledAccidentalHit": (
        BASIC,
        "A sampled class equals one of the row's labels and is masked "
        "(remove_accidental_hits=True).",
    ),
    "ClassBias": (BASIC, "A class bias b_k is added to every row's score of class k."),
    "ChunkedClasses": (
        BASIC,
        "chunk_size < num_classes: classes are scored chunk by chunk and merged by a "
        "streaming log-sum-exp; the numbers are those of one chunk.",
    ),
    "MultiHash": (
        BASIC,
        "Several hashes (Algorithm 3): each has its own buckets; the probability uses the "
        "largest gap over the hashes.",
    ),
    "PeriodicStream": (
        BASIC,
        "An item every k steps: after n hits the gap is k + (1 - a)^n (B_1 - k).",
    ),
    "LabelSmoothing": (
        BASIC,
        "label_smoothing e: each row's target is (1 - e) on its column and e / B on every "
        "column (PyTorch's cross_entropy).",
    ),
    "BaseTemperature": (
        BASIC,
        "base_temperature: the loss is multiplied by temperature / base_temperature.",
    ),
    # Pinned conventions (each changes numbers).
    "PairsSumOverBatch": (
        CONVENTION,
        "SigLIP's mean: the sum over all B^2 pairs divided by B (the batch size), not by B^2.",
    ),
    "SelfExcluded": (
        CONVENTION,
        "A sample's similarity with itself is masked: each view is scored against the other "
        "2B - 1.",
    ),
    "AnchorWithoutPositive": (
        CONVENTION,
        "An anchor without a positive contributes 0 and is left out of the mean (the original "
        "SupCon code gives NaN).",
    ),
    "OtherPositivesInDenominator": (
        CONVENTION,
        "SupCon's out form: every other sample, the anchor's other positives included, stays "
        "in the softmax denominator.",
    ),
    "NoPositivePairs": (
        CONVENTION,
        "No anchor has a positive: the mean loss is 0 (and its gradient 0).",
    ),
    "AllPositives": (
        CONVENTION,
        "Every sample shares the anchor's label (no negative): the formula applies "
        "(pytorch-metric-learning returns 0).",
    ),
    "DeduplicatedWithinStep": (
        CONVENTION,
        "An id (or a bucket) hit several times in one step is updated once: the estimate is "
        "a per-step hit probability.",
    ),
    "FirstSightingUpdate": (
        CONVENTION,
        "first_sighting='update' (default, the paper read literally): a bucket's first hit "
        "updates the gap with t - 0, the steps since step 0.",
    ),
    "FirstSightingRecord": (
        CONVENTION,
        "first_sighting='record': a bucket's first hit only records its step; the gap keeps "
        "initial_gap until the second hit.",
    ),
    "UnseenId": (
        CONVENTION,
        "An id whose buckets were never hit reads 1 / initial_gap (then clipped).",
    ),
    "ProbabilityClip": (
        CONVENTION,
        "The probability 1 / gap is clipped to [min_probability, 1].",
    ),
    "Saturation": (
        CONVENTION,
        "An item hit in every step has a gap tending to 1 and a probability saturating at 1.",
    ),
    "HashPinned": (
        CONVENTION,
        "The buckets of extreme, negative and random int64 ids under the documented "
        "SplitMix64 hash are pinned.",
    ),
    "LargeStep": (
        CONVENTION,
        "Steps are int64 and exact (2**40 and beyond), unlike a float32 step counter.",
    ),
    "PerExampleReduction": (
        CONVENTION,
        "The default reduction is 'none': the (B,) vector of row losses (TensorFlow's "
        "sampled losses).",
    ),
    "ExpectedCountNotProbability": (
        CONVENTION,
        "log of the expected count of each class in the sample (not of a probability) is "
        "subtracted from every logit, the true ones included; no clip.",
    ),
    "AccidentalHitNotRemoved": (
        CONVENTION,
        "remove_accidental_hits=False: a sampled class equal to a row's label stays a "
        "negative (nce_loss's default, as TensorFlow).",
    ),
    "EveryDuplicateHitMasked": (
        CONVENTION,
        "Every copy of a repeated sampled class equal to a row's label is masked "
        "(TensorFlow masks only the last copy).",
    ),
    "NceSoftLabels": (
        CONVENTION,
        "nce_loss with num_true > 1: each true class's sigmoid cross-entropy has label "
        "1/num_true, as TensorFlow.",
    ),
    "BiasNotScaledByTemperature": (
        CONVENTION,
        "The class bias is added after the temperature: <q, c>/tau + b, not (<q, c> + b)/tau.",
    ),
    "SumReduction": (
        CONVENTION,
        "The default reduction is 'sum' over rows (TFRS default), not the mean.",
    ),
    "SumReductionOption": (
        BASIC,
        "reduction='sum' (not this function's default): the sum of the per-row losses.",
    ),
    "MeanDividesByBatch": (
        CONVENTION,
        "reduction='mean' divides the weighted sum by the batch size B, not by sum(w).",
    ),
    "ExtraNegatives": (
        CONVENTION,
        "N > B: columns B..N-1 are extra negatives shared by every row; row i's positive "
        "is column i.",
    ),
    "LogQOnPositive": (
        CONVENTION,
        "The logQ correction is applied to every column, the positive included.",
    ),
    "LogQNotScaledByTemperature": (
        CONVENTION,
        "logQ is applied after the temperature: S/tau - log p, not (S - log p)/tau.",
    ),
    "MinProbabilityClip": (
        CONVENTION,
        "Probabilities are clipped to [min_probability, 1] before the logarithm.",
    ),
    "AccidentalHitsAllDuplicates": (
        CONVENTION,
        "Every negative column whose id equals the row's positive id is masked, not only "
        "one of them.",
    ),
    "PositiveNeverMaskedAsHit": (
        CONVENTION,
        "The positive column of a row is never masked as an accidental hit.",
    ),
    "NegInfMasking": (
        CONVENTION,
        "Masked logits are exactly -inf and contribute exactly zero probability (no finite "
        "penalty constant); a masked entry with a large logit must not change the loss.",
    ),
    "MaskedPositiveRowIsZero": (
        CONVENTION,
        "A row whose positive is masked has no target: its loss is exactly 0 and its "
        "gradient is 0.",
    ),
    "AllNegativesMasked": (
        CONVENTION,
        "A row whose negatives are all masked but whose positive is kept has loss exactly 0.",
    ),
    "HardNegativeTiesLowerIndex": (
        CONVENTION,
        "Hard-negative selection breaks exact ties in favour of the lower column index.",
    ),
    "HardNegativePositiveKept": (
        CONVENTION,
        "The positive is always kept by hard-negative mining, even when its logit is below "
        "the k-th largest negative.",
    ),
    "HardNegativesKeepAll": (
        CONVENTION,
        "num_hard_negatives >= N - 1 keeps every column.",
    ),
    "HardNegativesAfterCorrections": (
        CONVENTION,
        "Hard negatives are chosen on the corrected logits (after temperature, logQ, "
        "accidental hits and score mask).",
    ),
    "ScalarSampleWeight": (
        CONVENTION,
        "A 0-d sample_weight multiplies every row.",
    ),
    "PositiveMaskFalse": (
        CONVENTION,
        "positive_mask[i] False: row i has no target and its loss is exactly 0.",
    ),
    "LabelWeightsNotNormalised": (
        CONVENTION,
        "Label weights are used as given, not normalised to sum to 1: a row's loss and "
        "gradient scale with its total weight.",
    ),
    "ZeroLabelRow": (
        CONVENTION,
        "A row whose label weights are all 0 has no target: its loss and gradient are exactly 0.",
    ),
    "NegInfTargetIsInf": (
        CONVENTION,
        "A target column, or a positive label weight, on a -inf logit in a row that has a "
        "finite logit gives a loss of +inf (the target has probability 0).",
    ),
    # Edge cases.
    "RepeatedLabel": (
        EDGE_CASE,
        "A class is the label of several rows: its gradient is the sum of their contributions.",
    ),
    "AllSampledAreHits": (
        EDGE_CASE,
        "Every sampled class of a row is one of its labels: only the true logits remain "
        "(a single true class gives a loss of exactly 0).",
    ),
    "BucketCollision": (
        EDGE_CASE,
        "Different ids share a bucket: the bucket is hit once per step and their "
        "probabilities are those of the bucket.",
    ),
    "LearningRateOne": (EDGE_CASE, "learning_rate 1: the gap is the last interval."),
    "WidenedIds": (EDGE_CASE, "ids given as int32 are hashed as the int64 of the same value."),
    "SingleColumn": (EDGE_CASE, "One candidate only: the loss is exactly 0."),
    "ZeroSampleWeight": (EDGE_CASE, "Some rows have weight 0."),
    "NoDuplicateIds": (EDGE_CASE, "candidate_ids without duplicates: nothing is masked."),
    "MaskAllTrue": (EDGE_CASE, "score_mask is all True: nothing is masked."),
    "NegInfInput": (EDGE_CASE, "Some input logits are already -inf."),
    "AllNegInfRow": (EDGE_CASE, "A reduced slice is entirely -inf: logsumexp is -inf."),
    "Axis": (EDGE_CASE, "logsumexp over an axis other than the last."),
    "Int32Ids": (EDGE_CASE, "candidate_ids given as int32."),
    "FewerColumnsThanRows": (
        EDGE_CASE,
        "Integer labels with N < B: targets are column indices, so N >= 1 suffices.",
    ),
    "BoolLabelWeights": (EDGE_CASE, "Label weights given as a bool matrix (True weighs 1)."),
    # Numerics.
    "LargeLogits": (NUMERICS, "Logits of magnitude ~1e4: a naive exp overflows or underflows."),
    "SmallTemperature": (NUMERICS, "Temperature 0.01 gives logits in the hundreds."),
    "TinyProbability": (NUMERICS, "A probability of 1e-30 (or 0) is clipped to min_probability."),
    "Float64Only": (
        NUMERICS,
        "Inputs are not representable in float32: run in float64 only.",
    ),
    "NaNPropagates": (NUMERICS, "A NaN input propagates to the output; it is never hidden."),
    "DominantTarget": (
        NUMERICS,
        "The target logit exceeds the others by hundreds: the loss and gradients (about "
        "exp(-gap)) are far below the logits and must keep their relative precision.",
    ),
    # Invalid inputs.
    "InvalidShape": (
        INVALID_INPUT,
        "Shapes are inconsistent (rank, widths, N < B, lengths of per-row or per-column "
        "arrays); the call must raise.",
    ),
    "EmptyBatch": (INVALID_INPUT, "B = 0 rows; the call must raise."),
    "EmptySample": (INVALID_INPUT, "S = 0 sampled classes; the call must raise."),
    "InvalidExpectedCount": (
        INVALID_INPUT,
        "An expected count <= 0, infinite or NaN; the call must raise (TensorFlow returns "
        "NaN or inf).",
    ),
    "InvalidChunkSize": (INVALID_INPUT, "chunk_size < 1; the call must raise."),
    "InvalidScale": (
        INVALID_INPUT,
        "A negative or non-finite logit_scale, or a non-finite logit_bias; the call must raise.",
    ),
    "InvalidLabelSmoothing": (
        INVALID_INPUT,
        "label_smoothing outside [0, 1); the call must raise.",
    ),
    "NonIncreasingStep": (
        INVALID_INPUT,
        "A step that is not >= 1 and strictly greater than the previous one; the call must raise.",
    ),
    "InvalidLearningRate": (INVALID_INPUT, "learning_rate outside (0, 1]; the call must raise."),
    "InvalidProbability": (
        INVALID_INPUT,
        "candidate_sampling_probability outside [0, 1] or NaN; the call must raise.",
    ),
    "InvalidMinProbability": (
        INVALID_INPUT,
        "min_probability outside (0, 1]; the call must raise.",
    ),
    "InvalidTemperature": (
        INVALID_INPUT,
        "temperature <= 0 or not finite; the call must raise.",
    ),
    "InvalidNumHardNegatives": (
        INVALID_INPUT,
        "num_hard_negatives < 1; the call must raise.",
    ),
    "InvalidReduction": (INVALID_INPUT, "Unknown reduction name; the call must raise."),
    "InvalidLabels": (
        INVALID_INPUT,
        "Integer labels outside [0, N), or negative or NaN label weights; the call must "
        "raise ValueError.",
    ),
    "InvalidDtype": (
        INVALID_INPUT,
        "An array has the wrong kind of dtype (integer embeddings, float ids, non-bool "
        "mask); the call must raise TypeError.",
    ),
    "NonScalarLoss": (
        INVALID_INPUT,
        "Gradients need a scalar loss: reduction='none' must raise.",
    ),
}


def notes_for(flags: set[str]) -> dict[str, dict[str, str]]:
    """Return the ``notes`` object for a file whose tests use ``flags``."""
    unknown = sorted(flags - NOTES.keys())
    if unknown:
        raise KeyError(f"flags without a note: {unknown}")
    return {f: {"description": NOTES[f][1], "kind": NOTES[f][0]} for f in sorted(flags)}
