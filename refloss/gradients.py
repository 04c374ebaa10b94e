r"""Analytic gradients: ``value_and_grad(loss_fn, wrt=None)`` for every refloss scalar loss.

Each loss is a composition of pieces with their own vector-Jacobian products: scores
(:mod:`refloss._scores`), corrections, a row-wise cross-entropy (:mod:`refloss._softmax`)
and a reduction (:mod:`refloss._reductions`). A family's ``*_vjp`` rule chains them in
reverse; this module finds the rule in the registry (:mod:`refloss._registry`), binds the
arguments and picks the gradients asked for. Everything runs with the same array
operations as the loss, on every Array API backend, without an autodiff system; the test
suite checks each rule against PyTorch autograd and finite differences.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ._lib._compat import array_namespace
from ._lib._typing import Array
from ._registry import FAMILIES, Family, family_of

__all__ = ["value_and_grad"]


def _unwrap(loss_fn: object) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """``(function, bound args, bound keywords)`` through nested ``functools.partial``."""
    if isinstance(loss_fn, functools.partial):
        inner, args, keywords = _unwrap(loss_fn.func)
        return inner, (*args, *loss_fn.args), {**keywords, **loss_fn.keywords}
    return loss_fn, (), {}  # type: ignore[return-value]


def _family(function: object) -> Family:
    family = family_of(function)
    if family is None or family.vjp is None:
        scalar = ", ".join(f"refloss.{f.name}" for f in FAMILIES if f.vjp is not None)
        what = (
            f"refloss.{family.name} is not a scalar loss (it returns {', '.join(family.outputs)})"
            if family is not None
            else f"got {function!r}"
        )
        msg = f"value_and_grad supports the scalar losses {scalar} (or a partial of one); {what}"
        raise TypeError(msg)
    return family


def _check_wrt(family: Family, wrt: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """The names to differentiate; None: every positional argument given as an array."""
    if wrt is None:
        return None
    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)
    unknown = [name for name in names if name not in family.differentiable]
    if unknown or not names:
        msg = (
            f"wrt must name arguments of refloss.{family.name} that can be differentiated, "
            f"from {family.differentiable}; got {names!r}"
        )
        raise ValueError(msg)
    return names


def _check_differentiable(name: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is a floating array (a gradient can be returned)."""
    try:
        xp = array_namespace(value)
    except TypeError:
        msg = (
            f"cannot differentiate with respect to {name}: it was given as "
            f"{type(value).__name__} {value!r}; pass it as an array (a 0-D array for a scalar)"
        )
        raise TypeError(msg) from None
    if not xp.isdtype(value.dtype, "real floating"):
        msg = (
            f"cannot differentiate with respect to {name}: its dtype {value.dtype} is not floating"
        )
        raise TypeError(msg)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_and_grad(
    loss_fn: Callable[..., Array], wrt: Sequence[str] | str | None = None
) -> Callable[..., tuple[Array, tuple[Array, ...]]]:
    r"""Return a function computing ``loss_fn`` and its gradient.

    Parameters
    ----------
    loss_fn : callable
        A refloss scalar loss (``retrieval_loss``, ``sampled_softmax_loss``, ``nce_loss``,
        ``full_softmax_loss``, ``clip_loss``, ``siglip_loss``, ``nt_xent_loss``,
        ``supcon_loss``, ``softmax_cross_entropy``, ``logsumexp``), or a
        ``functools.partial`` of one.
    wrt : str or sequence of str, optional
        The arguments to differentiate, in the order their gradients are returned. None
        (default): every positional argument given as an array (a positional scalar given
        as a Python number, such as ``clip_loss``'s ``logit_scale``, is a constant). A
        keyword argument given as an array may be named too, e.g. ``"temperature"`` (a
        0-D array) or ``"sample_weight"``.

    Returns
    -------
    callable
        ``f(*arrays, **options) -> (loss, grads)``, taking exactly the arguments of
        ``loss_fn``. ``grads`` is a tuple with one gradient per name in ``wrt``, each with
        that argument's shape, dtype, namespace and device. The loss must be scalar:
        ``reduction="none"`` raises ``ValueError``.

    Raises
    ------
    TypeError
        If ``loss_fn`` is not a refloss scalar loss; when called, if an argument named in
        ``wrt`` is not a floating array.
    ValueError
        If ``wrt`` names an argument that cannot be differentiated.

    Notes
    -----
    For ``retrieval_loss`` with corrected logits :math:`S = QC^\top/\tau + \ldots` and
    per-row weight :math:`s_i` (:math:`w_i`, divided by B for ``"mean"``):

    .. math::

        G_{ij} = s_i \bigl(\operatorname{softmax}(S_i)_j - [j = i]\bigr), \qquad
        \nabla_Q L = G C / \tau, \qquad \nabla_C L = G^\top Q / \tau, \qquad
        \frac{\partial L}{\partial \tau} = -\frac{1}{\tau^2} \sum_{ij} G_{ij} (QC^\top)_{ij},

    with :math:`G_{ij} = 0` on masked entries and on rows without a target. Gradients also
    flow *through* refloss with the backends' own autodiff (``torch.autograd``,
    ``jax.grad``): the functions are plain array code.

    References
    ----------
    .. [1] C. M. Bishop, "Pattern Recognition and Machine Learning", Springer, 2006,
       Eq. (4.109) (gradient of the softmax cross-entropy).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> q = xp.asarray([[1.0, 0.0]])
    >>> c = xp.asarray([[1.0, 0.0], [0.0, 1.0]])
    >>> loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(q, c)
    >>> dq.shape, dc.shape
    ((1, 2), (2, 2))
    >>> tau = xp.asarray(0.5)
    >>> f = refloss.value_and_grad(refloss.retrieval_loss, wrt=("temperature",))
    >>> loss, (d_tau,) = f(q, c, temperature=tau)
    >>> d_tau.shape
    ()
    """
    function, bound_args, bound_keywords = _unwrap(loss_fn)
    family = _family(function)
    names = _check_wrt(family, wrt)
    signature = inspect.signature(function)

    def loss_and_gradients(*args: Any, **kwargs: Any) -> tuple[Array, tuple[Array, ...]]:
        bound = signature.bind(*bound_args, *args, **{**bound_keywords, **kwargs})
        bound.apply_defaults()
        arguments = bound.arguments
        if arguments.get("reduction") == "none":
            msg = 'value_and_grad needs a scalar loss: use reduction="sum" or "mean", not "none"'
            raise ValueError(msg)
        chosen = names
        if chosen is None:  # a positional scalar given as a Python number is a constant
            chosen = tuple(n for n in family.positional if not _is_number(arguments[n]))
        for name in chosen:
            _check_differentiable(name, arguments[name])
        value, gradients = family.vjp(arguments)  # type: ignore[misc]
        if value.ndim != 0:
            msg = (
                f"value_and_grad needs a scalar loss; refloss.{family.name} returned shape "
                f"{tuple(value.shape)} for these arguments"
            )
            raise ValueError(msg)
        return value, tuple(gradients[name] for name in chosen)

    differentiated = ", ".join(names or family.positional)
    loss_and_gradients.__doc__ = (
        f"Value and gradient of refloss.{family.name} with respect to {differentiated}."
    )
    return loss_and_gradients
