"""``kfm ci``: the specification's CI validation as one command, for the users' own pipelines.

One pass over a candidate runs every check of "CI Validation Requirements" plus the inference
part of "Determinism Requirements" (ids as in reports and JUnit test cases):

``metadata-schema``, ``stac-item``, ``xai``, ``telemetry``, ``fair-care``, ``sovereignty``,
``deployment-hash``, ``rebuild``, ``inference``.

- :mod:`core.ci.report` — :class:`CiCheck`, :class:`CiFailure`, :class:`CiReport` (JSON, JUnit).
- :mod:`core.ci.checks` — the checks, over the stages' own APIs (gates, describe, digests).
- :mod:`core.ci.boundary` — sovereignty boundary safety recomputed from the published records.
- :mod:`core.ci.run` — :func:`run_ci_candidate` ties them together; the deployment is staged
  twice by the pipeline itself (``python -m core.pipeline``, unsigned) in fresh interpreters.
- :mod:`core.ci.version` — :func:`run_ci_version`: the same checks on a registry version
  (``kfm ci --version V``), after re-hashing its stored files (check ``registry``); its fresh
  staging is compared with the stored files.
"""

from core.ci.report import CiCheck, CiError, CiFailure, CiReport
from core.ci.run import CHECK_TITLES, DEFAULT_STANDARDS, CiOptions, run_ci_candidate

__all__ = [
    "CHECK_TITLES",
    "DEFAULT_STANDARDS",
    "CiCheck",
    "CiError",
    "CiFailure",
    "CiOptions",
    "CiReport",
    "run_ci_candidate",
]
