"""The demo and the reference candidate, apart from the engine (which never imports them).

- :mod:`core.demo.reference` — :func:`build_reference_candidate`: a real downscaling model of
  NCEP reanalysis air temperature (shipped in ``hvsampledata``), exported to ONNX, explained,
  with its training PROV (:mod:`core.demo.reference_prov`) and telemetry.
- :mod:`core.demo.build` — :func:`build_demo`: a workspace with reviewers, a deployed version,
  a first approval and monitoring runs, for ``kfm demo`` and the dashboard; :func:`load_demo`.
"""
