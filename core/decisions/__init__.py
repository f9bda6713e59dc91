"""Decisions stage: signed records, the roster, the hash-chained ledger, replay and the engine.

- :mod:`core.decisions.records` — :class:`DecisionRecord` in a DSSE envelope over an in-toto
  statement (:func:`sign_decision`, :func:`verify_decision`).
- :mod:`core.decisions.roster` — who may act in which role, signed by the root key
  (:func:`load_roster`, :class:`TrustedRoster`, :func:`add_reviewer`, :func:`revoke_reviewer`).
- :mod:`core.decisions.ledger` — the append-only, hash-chained ledger: SQLite by default,
  PostgreSQL for many users (:func:`open_ledger`, :meth:`Ledger.transact`).
- :mod:`core.decisions.verify` — :func:`verify_ledger`: chain, signatures, roles at their time.
- :mod:`core.decisions.checkpoints` — signed checkpoints of the ledger head in the registry
  (:func:`checkpoint_head`, :func:`write_checkpoint`, :func:`newest_checkpoint`).
- :mod:`core.decisions.trust` — what a client trusts, outside the workspace: root key pins and
  the witness of what it verified (:class:`TrustStore`).
- :mod:`core.decisions.anchors` — the checks after verification: newest checkpoint, witness,
  roster serial, registry cross-check (:func:`read_anchors`, :func:`check_anchors`,
  :func:`remember_verified`).
- :mod:`core.decisions.state` — what replay produces (:class:`ChannelState`,
  :class:`VersionState`, :class:`VersionFacts`).
- :mod:`core.decisions.rules` — every decision rule in one place: :data:`ALLOWED_ROLES`,
  :func:`missing_rules`, :func:`refusal` and :func:`allowed_actions` (what the engine accepts
  is exactly what it offers).
- :mod:`core.decisions.replay` — :func:`replay`: the channel state as a pure fold of the ledger.
- :mod:`core.decisions.engine` — :class:`DecisionEngine` (a context manager that closes its
  ledger): submits a reviewer's decision and appends the promotion or rollback it triggers;
  :func:`rollback_to_last_good_version`.
- :mod:`core.decisions.reviewer` — a reviewer's decision built with the evidence the policy
  names, signed (:func:`prepare_decision`) and submitted (:func:`submit_decision`).
"""
