"""Load stage: a candidate directory parsed into typed, checked records.

- :mod:`core.candidate.load` — :func:`load_candidate` (a :class:`Candidate`, or a
  :class:`~core.errors.CandidateError` naming the file, field, expected and found) and
  :func:`check_candidate` (every problem at once, for ``kfm candidate check``).
- :mod:`core.candidate.footprint` — the model's footprint from its validation grid
  (:func:`grid_footprint`) and the check of the declared box against it
  (:func:`check_declared_bbox`).
- :mod:`core.candidate.models` — the pydantic records of the candidate's JSON files
  (:class:`ModelMetadata`, :class:`ModelSummary`, :class:`XaiSummary`, :class:`Telemetry`, ...).
- :mod:`core.candidate.schemas` — their JSON Schemas (:func:`export_schemas`,
  :func:`stale_schemas`), exported to the repository's ``schemas/`` folder.
- :mod:`core.candidate.features` and :mod:`core.candidate.inference` — the model's inputs built
  from a dataset (:func:`feature_block`) and the ONNX model run on them (:func:`make_session`,
  :func:`run_matrix`, :func:`predict_dataset`, :func:`predict_grid`).
"""
