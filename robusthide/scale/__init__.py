"""Mark or verify many images on a Ray cluster (or a local Ray): :func:`run_job`, ``robusthide scale``.

See :mod:`robusthide.scale.jobs` and docs/scale.md. Ray is imported only when a job runs (extra ``scale``).
"""

from robusthide.scale.jobs import COLUMNS, read_results, read_sources, run_job

__all__ = ["COLUMNS", "read_results", "read_sources", "run_job"]
