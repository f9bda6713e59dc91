"""Sign stage: digests, keys and the OpenSSF model-signing bundle.

- :mod:`core.signing.digests` — per-file SHA-256 (:func:`sha256_file`, :func:`hash_directory`),
  the :class:`Manifest` and its root digest, multihash form for STAC (:func:`multihash`), and the
  :class:`ModelSubject` every decision record is about.
- :mod:`core.signing.keys` — passphrase-protected ECDSA P-256 keys (:func:`generate_key_pair`,
  :func:`load_signer`, :func:`load_public_key`, :func:`key_fingerprint`).
- :mod:`core.signing.bundle` — :func:`sign_model` (``model.sig``: Sigstore bundle, DSSE, in-toto
  statement, plus the ``integrity.json`` block), :func:`sign_model_sigstore` (keyless, online),
  :func:`check_model` / :func:`verify_model` (every digest, the manifest, the signature).
"""
