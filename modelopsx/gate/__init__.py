"""The promotion gate: a policy (`policy`), evidence checks that fail closed (`evidence`), the decision
(`decide`) and its record (`decision`, with `verdict`), and its rendering (`render`).

Import each name from the module that owns it; this package re-exports only what the HTML report reads."""

from modelopsx.gate.decision import Decision
from modelopsx.gate.render import plain_sentence, table_header, table_rows

__all__ = ["Decision", "plain_sentence", "table_header", "table_rows"]
