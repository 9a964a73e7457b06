"""Training data sets that can be built without internet (see :mod:`robusthide.data.photos`)."""
