"""The registry's one table from domain problems to HTTP: complete, unambiguous, Confluent's codes."""

from __future__ import annotations

import json

from freight.registry import errors
from freight.registry.api.http import STATUS, problem_response
from freight.registry.errors import Problem


def test_every_problem_has_one_status_and_a_distinct_code() -> None:
    assert set(STATUS) == set(Problem)
    codes = [code for _status, code in STATUS.values()]
    assert len(codes) == len(set(codes))
    for status, code in STATUS.values():
        assert str(code).startswith(str(status)), (status, code)  # Confluent: 40401 is a 404, 42201 a 422


def test_a_domain_error_answers_with_confluents_body() -> None:
    response = problem_response(errors.subject_not_found("orders-value"))
    assert response.status_code == 404
    assert json.loads(bytes(response.body)) == {
        "error_code": 40401,
        "message": "Subject 'orders-value' not found.",
    }
    assert problem_response(errors.incompatible_schema("s", ["x"])).status_code == 409
    assert problem_response(errors.operation_timeout("t")).status_code == 500
