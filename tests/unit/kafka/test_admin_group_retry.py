"""Group admin calls ask again while the coordinator loads (a fresh broker answers
COORDINATOR_LOAD_IN_PROGRESS for seconds), and report other errors at once."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from freight.config import FreightSettings
from freight.errors import FreightError
from freight.kafka import KafkaAdmin


def answers(*outcomes: Any) -> Any:
    """A call returning futures that fail with the given KafkaError codes, then hold the last value."""
    left = list(outcomes)

    def call() -> Future[Any]:
        future: Future[Any] = Future()
        outcome = left.pop(0)
        if isinstance(outcome, int):
            future.set_exception(KafkaException(KafkaError(outcome)))
        else:
            future.set_result(outcome)
        return future

    return call


@pytest.fixture
def admin() -> KafkaAdmin:
    return KafkaAdmin(FreightSettings(kafka_bootstrap="127.0.0.1:1"), timeout=5, quiet=True)


def test_a_loading_coordinator_is_asked_again(admin: KafkaAdmin) -> None:
    call = answers(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR, "described")
    assert admin._wait_group(call, "describe group 'g'") == "described"


def test_other_errors_are_reported_at_once(admin: KafkaAdmin) -> None:
    with pytest.raises(FreightError, match="GROUP_AUTHORIZATION_FAILED"):
        admin._wait_group(answers(KafkaError.GROUP_AUTHORIZATION_FAILED, "never"), "describe group 'g'")
