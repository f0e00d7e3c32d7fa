"""One name and one look for each kind of hash, wherever a hash is shown (run summary, dataset and model
tables, the champion).

- content hash: a dataset version's (or a split's) content, independent of where it is stored; two
  publishes of the same images and annotations have the same one.
- DVC hash: the DVC directory object (`<md5>.dir`) that `dvc pull` fetches a dataset or model version by.
- test split hash: the content hash of the test split both models of a gate decision were scored on.

Every hash is shown as its first 12 hex digits after its name: `content 974eff2fe5b0`, `DVC 9b4955075eec`,
`test split 8e0de4e0d309`. The registry's JSON keeps them whole.
"""

from __future__ import annotations

SHOWN_DIGITS = 12
CONTENT = "content"
DVC = "DVC"
TEST_SPLIT = "test split"


def short_hash(value: object) -> str:
    """The first 12 hex digits (DVC's `.dir` suffix dropped), or "?" when there is none."""
    text = str(value or "").removesuffix(".dir")
    return text[:SHOWN_DIGITS] if text else "?"


def labelled(kind: str, value: object) -> str:
    """`content 974eff2fe5b0`: the kind's name, then the short hash."""
    return f"{kind} {short_hash(value)}"
