"""Secrets: encrypted at rest, given to templates, masked as `***` wherever shown.

- `crypto`: the key (`SIRE_SECRET_KEY` or `$SIRE_HOME/secret.key`) and AES-256-GCM;
  imported only when a secret is read or written (it loads `cryptography`).
- `redact`: masking secret values in text and JSON-like data; the display form of
  sealed output values (`shown`).
- `vault`: one run's secrets (`Vault`: values, sealing, redaction), the engine's
  `SecretSource` seam and its fixed-set implementation `FixedSecrets`.
- `store`: `StoreSecrets`, the `SecretSource` over the store's encrypted secrets.

The `sire secret` commands live in `sire.cli.secrets`. Nothing is imported here:
`sire run` loads only what a run needs.
"""
