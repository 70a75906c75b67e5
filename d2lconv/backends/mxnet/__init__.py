"""The MXNet tab: Apache MXNet 1.9.1 (the last release) with its NumPy interface and Gluon.

One module per section of the book (``d2lconv.backends._shared.SECTIONS``), the same names in the same
order in every tab; the package holds them all.
"""

from .._shared import export_sections

__all__ = export_sections(__name__)
