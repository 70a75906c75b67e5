"""Data shipped inside d2lconv (see README.md here for sources and licences)."""
