"""Adversarial tests: each module tries to break one promise the app makes (docs/security.md lists them all)."""
