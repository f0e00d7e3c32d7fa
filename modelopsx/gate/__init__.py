"""The promotion gate: a policy (`policy`), evidence checks that fail closed (`evidence`), the decision
(`decide`) and its record (`decision`, with `verdict`), and its rendering (`render`).

Import each name from the module that owns it."""
