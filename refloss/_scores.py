r"""Scores of a two-tower model, :math:`S = Q C^\top / \tau`, and their vector-Jacobian product.

The temperature :math:`\tau` (the inverse of a CLIP-style logit scale) is a Python number, a
0-D array (a learnable parameter, or a value traced by ``jax.jit``) or None (:math:`\tau = 1`).
It is folded into the query, the smaller operand of the matmul, so dividing costs
:math:`O(BD)`, not :math:`O(BN)`:

.. math::

    S = Q' C^\top, \qquad Q' = Q / \tau.

Given :math:`G = \partial L / \partial S`, the chain rule gives

.. math::

    \frac{\partial L}{\partial Q'} = G C, \qquad
    \frac{\partial L}{\partial C} = G^\top Q', \qquad
    \frac{\partial L}{\partial Q} = \frac{G C}{\tau}, \qquad
    \frac{\partial L}{\partial \tau} = -\frac{1}{\tau} \sum_{i,d} Q'_{id}
        \Bigl(\frac{\partial L}{\partial Q'}\Bigr)_{id},

the last because :math:`\partial Q'_{id} / \partial \tau = -Q'_{id} / \tau`. The products
:math:`G C` and :math:`G^\top Q'` are formed tile by tile by :mod:`refloss._tiling`; this
module holds the two ends of the chain, which cost :math:`O(BD)`.
"""

from __future__ import annotations

from ._lib._typing import Array, ArrayNamespace

__all__ = ["multiply_query", "multiply_query_vjp", "scale_query", "scale_query_vjp", "tile_scores"]


def scale_query(query: Array, *, temperature: float | Array | None) -> Array:
    r""":math:`Q' = Q / \tau` (``query`` itself when ``temperature`` is None)."""
    if temperature is None:
        return query
    return query / temperature


def tile_scores(scaled_query: Array, candidates: Array, *, xp: ArrayNamespace) -> Array:
    r""":math:`S = Q' C^\top` for the rows and columns the operands hold."""
    return scaled_query @ xp.matrix_transpose(candidates)


def scale_query_vjp(
    grad_scaled_query: Array,
    scaled_query: Array,
    *,
    temperature: float | Array | None,
    xp: ArrayNamespace,
) -> tuple[Array, Array | None]:
    r"""Pull :math:`\partial L / \partial Q'` back to the query and the temperature.

    Returns ``(grad_query, grad_temperature)``; ``grad_temperature`` is a 0-D array, or
    None when ``temperature`` is None.
    """
    if temperature is None:
        return grad_scaled_query, None
    grad_query = grad_scaled_query / temperature
    grad_temperature = -xp.sum(grad_scaled_query * scaled_query) / temperature
    return grad_query, grad_temperature


def multiply_query(query: Array, *, scale: float | Array) -> Array:
    r""":math:`Q' = t\,Q` for a CLIP-style logit scale :math:`t` (a number or a 0-D array)."""
    return scale * query


def multiply_query_vjp(
    grad_scaled_query: Array, query: Array, *, scale: float | Array, xp: ArrayNamespace
) -> tuple[Array, Array]:
    r"""Pull :math:`\partial L / \partial Q'` back through :math:`Q' = t\,Q`.

    .. math::

        \frac{\partial L}{\partial Q} = t\, \frac{\partial L}{\partial Q'}, \qquad
        \frac{\partial L}{\partial t} = \sum_{i,d} Q_{id}
            \Bigl(\frac{\partial L}{\partial Q'}\Bigr)_{id}
            = \sum_{i,j} G_{ij} (Q C^\top)_{ij}.

    Returns ``(grad_query, grad_scale)``, the latter a 0-D array.
    """
    return scale * grad_scaled_query, xp.sum(grad_scaled_query * query)
