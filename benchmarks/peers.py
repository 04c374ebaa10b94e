"""The peers refloss is judged against, on the inputs of one benchmark row.

Each peer is what a user of that library would write for the same loss: scores
``q @ c.T / tau``, minus ``log clip(p, 1e-6, 1)`` (logQ), accidental hits (another candidate
with the positive's id) set to ``-inf``, softmax cross-entropy against the diagonal,
summed. A peer exposes two timed calls, ``peer_loss`` (the loss alone, no autograd graph)
and ``peer_loss_grad`` (the loss and its gradients with respect to ``q`` and ``c``), the
name of the call its times are divided by, and a one-off ``loss_value`` for the agreement
check. A missing library is reported once and its peer skipped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

MIN_PROBABILITY = 1e-6  # refloss's and TFRS's default clip of the sampling probability


class Peer(NamedTuple):
    name: str
    calls: dict[str, Callable[[], Any]]
    reference: str  # the call (this peer's or refloss's) its time ratios divide by
    loss_value: Callable[[], float]


_reported: set[str] = set()


def _skip(name: str, why: str) -> None:
    if name not in _reported:
        _reported.add(name)
        print(f"peer {name} skipped: {why}", flush=True)


def peer_for(backend: str, x: Any) -> Peer | None:
    """The peer timed next to refloss on ``backend`` (``x``: the row's inputs), if any."""
    if backend == "torch":
        return _torch_peer(x)
    if backend == "jax":
        return _jax_peer(x)
    return _tfrs_peer(x)  # TensorFlow is its own backend: timed next to refloss-on-NumPy


def _torch_peer(x: Any) -> Peer:
    import torch
    import torch.nn.functional as F

    q, c, tau = x.q, x.c, x.tau
    p = x.kwargs.get("candidate_sampling_probability")
    ids = x.kwargs.get("candidate_ids")
    targets = torch.arange(q.shape[0])

    def loss(q, c):
        logits = q @ c.T
        if tau is not None:
            logits = logits / tau
        if p is not None:
            logits = logits - torch.log(torch.clamp(p, MIN_PROBABILITY, 1.0))
        if ids is not None:
            hits = ids[: q.shape[0], None] == ids[None, :]
            hits.fill_diagonal_(False)
            logits = logits.masked_fill(hits, float("-inf"))
        return F.cross_entropy(logits, targets, reduction="sum")

    q_leaf, c_leaf = q.detach().clone().requires_grad_(), c.detach().clone().requires_grad_()

    def loss_grad():
        q_leaf.grad = c_leaf.grad = None
        value = loss(q_leaf, c_leaf)
        value.backward()
        return value, q_leaf.grad, c_leaf.grad

    return Peer(
        "torch cross_entropy + backward",
        {"peer_loss": lambda: loss(q, c), "peer_loss_grad": loss_grad},
        "matmul",
        lambda: float(loss(q, c)),
    )


def _jax_peer(x: Any) -> Peer:
    import jax
    import jax.numpy as jnp

    tau = x.tau

    def loss(q, c, p, ids):
        logits = q @ c.T
        if tau is not None:
            logits = logits / tau
        if p is not None:
            logits = logits - jnp.log(jnp.clip(p, MIN_PROBABILITY, 1.0))
        if ids is not None:
            rows, cols = logits.shape
            hits = (ids[:rows, None] == ids[None, :]) & ~jnp.eye(rows, cols, dtype=bool)
            logits = jnp.where(hits, -jnp.inf, logits)
        return -jnp.sum(jnp.diagonal(jax.nn.log_softmax(logits, axis=-1)))

    args = (
        x.q,
        x.c,
        x.kwargs.get("candidate_sampling_probability"),
        x.kwargs.get("candidate_ids"),
    )
    jit_loss = jax.jit(loss)
    jit_loss_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    return Peer(
        "jax.jit log_softmax + value_and_grad",
        {"peer_loss": lambda: jit_loss(*args), "peer_loss_grad": lambda: jit_loss_grad(*args)},
        "matmul",
        lambda: float(jit_loss(*args)),
    )


def _tfrs_peer(x: Any) -> Peer | None:
    name = "TFRS tasks.Retrieval"
    try:
        import tensorflow as tf
        import tensorflow_recommenders as tfrs
    except ImportError as error:
        _skip(name, f"{error} (optional: pip install tensorflow tensorflow-recommenders)")
        return None
    q, c = tf.constant(x.q), tf.constant(x.c)
    kwargs = {key: tf.constant(value) for key, value in x.kwargs.items()}
    task = tfrs.tasks.Retrieval(temperature=x.tau, remove_accidental_hits="candidate_ids" in kwargs)
    loss = functools.partial(task, compute_metrics=False, compute_batch_metrics=False, **kwargs)

    @tf.function
    def matmul(q, c):
        return tf.matmul(q, c, transpose_b=True)

    @tf.function
    def loss_grad(q, c):
        with tf.GradientTape() as tape:
            tape.watch((q, c))
            value = loss(q, c)
        return value, tape.gradient(value, (q, c))

    loss_fn = tf.function(loss)
    try:
        loss_fn(q, c)
        loss_grad(q, c)
    except Exception as error:  # an optional peer must not stop the run
        _skip(f"{name} ({x.q.dtype})", f"{type(error).__name__}: {error}")
        return None
    return Peer(
        name + " + GradientTape",
        {
            "peer_matmul": lambda: matmul(q, c),
            "peer_loss": lambda: loss_fn(q, c),
            "peer_loss_grad": lambda: loss_grad(q, c),
        },
        "peer_matmul",
        lambda: float(loss_fn(q, c)),
    )
