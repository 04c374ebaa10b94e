"""The single import point for array-api-compat and array-api-extra."""

from array_api_compat import (
    array_namespace,
    device,
    is_cupy_array,
    is_jax_array,
    is_lazy_array,
    is_numpy_array,
    is_torch_array,
)

__all__ = [
    "array_namespace",
    "device",
    "is_cupy_array",
    "is_jax_array",
    "is_lazy_array",
    "is_numpy_array",
    "is_torch_array",
]
