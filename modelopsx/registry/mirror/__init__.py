"""A git + DVC (+ GTO) repository that mirrors the registry (the DVC "data registry" pattern)."""
