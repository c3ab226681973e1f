"""A scripted in-memory connector for engine tests (HTTP is tested in the connector tests)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from okrsync.config.loader import Config
from okrsync.connector import Connector, QueryBase, Reading, Window
from okrsync.measure.plan import describe


class ScriptedConnector:
    """Answers each query text from a dict: a number, or an exception to raise."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests = 0
        self.asked: list[str] = []

    def fetch(self, query: QueryBase, window: Window) -> Reading:
        self.requests += 1
        text = describe(query.model_dump(exclude_none=True))
        self.asked.append(text)
        answer = self.answers[text]
        if isinstance(answer, BaseException):
            raise answer
        return Reading(float(answer))

    def close(self) -> None:
        pass


def factory(connectors: Mapping[str, ScriptedConnector]) -> Callable[[str, Config], Connector]:
    def make(name: str, config: Config) -> Connector:
        return connectors[name]

    return make
