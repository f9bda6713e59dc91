"""Sovereignty stage: steward regions, H3 generalization of a model's outputs, CARE metadata.

- :mod:`core.sovereignty.regions` — steward-owned regions from GeoJSON or GeoPackage
  (:func:`load_regions`, :class:`RegionSet`, Local Contexts labels, tiers, consent).
- :mod:`core.sovereignty.h3grid` — vectorized H3 indexing (:func:`latlng_to_cells`,
  :func:`cells_overlapping`, :func:`grid_disks`).
- :mod:`core.sovereignty.generalize` — :func:`screen_field`: what a release may publish inside
  each region (generalized cells, suppressed, withheld and buffer), written byte-stable by
  :func:`write_screen_outputs`.
- :mod:`core.sovereignty.care` — :func:`care_metadata` (the STAC item's CARE block),
  :func:`touched_regions` / :func:`concerned_stewards` (regions whose land or withheld buffer a
  footprint overlaps) and :func:`find_conflicts` (``sovereignty_conflict.json``).
- :mod:`core.sovereignty.screen` — :func:`screen_candidate`: the candidate's model run over its
  validation period, inside its footprint only, and screened (used by ``kfm screen``,
  ``kfm deploy`` and ``kfm ci``).

The footprint is always the one computed from the candidate's validation grid
(:attr:`core.candidate.load.Candidate.footprint`), never a declared box.
"""
