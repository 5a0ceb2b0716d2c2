"""Read what the API published, with a real kombu consumer on the test's own queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError


@dataclass(frozen=True)
class TaskMessage:
    task: str
    args: list[Any]


class QueueReader:
    def __init__(self, broker_url: str, queue: str) -> None:
        self.broker_url = broker_url
        self.queue_name = queue
        self.connection = Connection(broker_url)
        self.queue = self.connection.SimpleQueue(queue)

    def get(self, timeout: float = 5.0) -> TaskMessage:
        message = self.queue.get(timeout=timeout)
        message.ack()
        args, _kwargs, _embed = message.payload
        return TaskMessage(task=message.headers["task"], args=list(args))

    def empty(self) -> bool:
        try:
            return bool(self.queue.qsize() == 0)
        except ChannelError:  # Redis drops an emptied list: the queue no longer "exists"
            return True

    def close(self) -> None:
        self.queue.close()
        self.connection.release()  # the api_settings fixture deletes the queue's keys
