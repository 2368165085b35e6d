"""Task heads: token, span, relation and ranking, built by :func:`create_task_head`.

Importing this package registers the four head kinds in :data:`HEADS`.
"""

from mtpeft.heads.base import HEADS, Batch, HeadOutput, TaskHead, create_task_head
from mtpeft.heads.ranking import RELEVANCE_LEVELS, RankingHead, pool_hidden
from mtpeft.heads.relation import RelationHead, entity_distance
from mtpeft.heads.span import SpanHead, enumerate_spans
from mtpeft.heads.token import TokenHead

__all__ = [
    "HEADS",
    "RELEVANCE_LEVELS",
    "Batch",
    "HeadOutput",
    "RankingHead",
    "RelationHead",
    "SpanHead",
    "TaskHead",
    "TokenHead",
    "create_task_head",
    "entity_distance",
    "enumerate_spans",
    "pool_hidden",
]
