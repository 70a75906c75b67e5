"""The JAX tab: the book's JAX code (JAX + Flax linen), differentiated by ``jax.grad`` and ``jax.vjp``.

One module per section of the book (``d2lconv.backends._shared.SECTIONS``), the same names in the same
order in every tab; the package holds them all.
"""

from .._shared import export_sections

__all__ = export_sections(__name__)
