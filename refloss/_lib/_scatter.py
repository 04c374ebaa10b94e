r"""Scatter-add with repeated indices: the one gap of the standard the sampled losses need.

The gradient of a gathered row, :math:`W[\mathrm{id}_m]`, is added back into row
:math:`\mathrm{id}_m` of :math:`\partial L / \partial W`; an id that is gathered twice (a
popular class that is the label of several rows, or a label that is also sampled) receives
the sum of its contributions. The Array API standard has no operation for this, and
``array_api_extra.at(x)[idx].add(y)`` leaves repeated indices undefined (NumPy and PyTorch
keep one contribution). :func:`scatter_add` uses each library's own accumulating
operation, and a one-hot product where a library has none.
"""

from __future__ import annotations

import importlib
import sys

from ._compat import device, is_cupy_array, is_jax_array, is_numpy_array, is_torch_array
from ._typing import Array, ArrayNamespace

__all__ = ["scatter_add"]


def scatter_add(size: int, index: Array, values: Array, *, xp: ArrayNamespace) -> Array:
    r"""``out[k] = sum of values[m] over m with index[m] == k``, for ``k`` in ``[0, size)``.

    Parameters
    ----------
    size : int
        Rows of the result.
    index : array, shape (M,), integer
        Target row of each entry of ``values``, in ``[0, size)``; repeats accumulate.
    values : array, shape (M, ...)
        Rows to add.

    Returns
    -------
    array, shape (size, ...)
        Dtype and device of ``values``.

    Notes
    -----
    NumPy: ``numpy.add.at``; CuPy: ``cupyx.scatter_add``; PyTorch: ``Tensor.index_add_``
    on the fresh zeros (differentiable by autograd); JAX: ``.at[index].add`` (traceable
    under ``jax.jit``).
    Any other namespace: the one-hot product :math:`E^\top V` with
    :math:`E_{mk} = [\mathrm{index}_m = k]`, which costs :math:`O(M \cdot \mathrm{size})`
    memory and is meant for small problems (array-api-strict in tests).
    """
    shape = (size, *values.shape[1:])
    out = xp.zeros(shape, dtype=values.dtype, device=device(values))
    if is_jax_array(out):
        return out.at[index].add(values)
    if is_torch_array(out):
        return out.index_add_(0, index, values)  # in place on its own zeros; autograd records it
    if is_numpy_array(out):
        sys.modules["numpy"].add.at(out, index, values)
        return out
    if is_cupy_array(out):
        importlib.import_module("cupyx").scatter_add(out, index, values)
        return out
    classes = xp.arange(size, dtype=index.dtype, device=device(index))
    one_hot = xp.astype(classes[:, None] == index[None, :], values.dtype)
    if values.ndim == 1:
        return (one_hot @ values[:, None])[:, 0]
    return one_hot @ values
