"""The NumPy tab: the reference every framework is checked against.

One module per section of the book (``d2lconv.backends._shared.SECTIONS``), the same names in the same
order in every tab; the package holds them all.
"""

from .._shared import export_sections

__all__ = export_sections(__name__)
