"""Decisions stage: signed records, the roster, the hash-chained ledger, the verified replay and
the engine.

- :mod:`core.decisions.records` — :class:`DecisionRecord` (format 2: anchored on the ledger head
  its signer saw) in a DSSE envelope over an in-toto statement (:func:`sign_decision`,
  :func:`verify_decision`); a version's signed :class:`VersionFacts`.
- :mod:`core.decisions.roster` — who may act in which role, signed by the root key
  (:func:`load_roster`, :class:`TrustedRoster`, :func:`add_reviewer`, :func:`revoke_reviewer`).
- :mod:`core.decisions.ledger` — the append-only, hash-chained ledger: SQLite by default,
  PostgreSQL for many users (:func:`open_ledger`, :meth:`Ledger.transact`).
- :mod:`core.decisions.checkpoints` — signed checkpoints of the ledger head in the registry
  (:func:`checkpoint_head`, :func:`write_checkpoint`, :func:`newest_checkpoint`).
- :mod:`core.decisions.trust` — what a client trusts, outside the workspace: root key pins and
  the witness of what it verified (:class:`TrustStore`).
- :mod:`core.decisions.anchors` — the checks beside verification, on the verified state:
  newest checkpoint, witness, roster serial, registry cross-check (:func:`read_anchors`,
  :func:`check_anchors`, :func:`remember_verified`; :func:`verified_and_anchored` does all
  three around one incremental verification).
- :mod:`core.decisions.rules` — every decision rule in one place: :data:`ALLOWED_ROLES`,
  :func:`missing_rules`, :func:`refusal`, :func:`pipeline_refusal` and :func:`allowed_actions`
  (what the engine accepts is exactly what it offers, and what verification lets count).
- :mod:`core.decisions.state` — what the verified replay produces (:class:`VerifiedState`,
  :class:`ChannelState`, :class:`VersionState`, :class:`ChannelEvent`).
- :mod:`core.decisions.replay` — the fold of verified entries, deriving promotions and
  rollbacks; :func:`replay` up to a time.
- :mod:`core.decisions.verify` — :func:`verify_and_replay` / :func:`verify_ledger`: every entry
  checked (chain, signature, role when recorded, anchor, rules) and folded;
  :class:`VerifiedLedger` extends a verified state by what is new.
- :mod:`core.decisions.rollbacks` — the three files every rollback leaves in the registry.
- :mod:`core.decisions.engine` — :class:`DecisionEngine` (a context manager that closes its
  ledger): appends a person's record (no pipeline key) and the pipeline's records, acting only
  on the verified state; :func:`rollback_to_last_good_version` for automatic rollbacks.
- :mod:`core.decisions.reviewer` — a reviewer's decision built with the evidence the policy
  names and the verified head as anchor, signed (:func:`prepare_decision`) and submitted
  (:func:`submit_decision`).
"""
