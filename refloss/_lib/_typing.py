"""Type aliases shared by the package.

An Array API array has no common nominal type, so ``Array`` is an alias of ``Any``; an
array namespace is a module (or a module-like object).
"""

from types import ModuleType
from typing import Any, TypeAlias

Array: TypeAlias = Any
ArrayNamespace: TypeAlias = ModuleType | Any

__all__ = ["Array", "ArrayNamespace"]
