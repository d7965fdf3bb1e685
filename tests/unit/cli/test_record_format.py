"""kcat-style format strings and byte encodings of `freight consume -f/--raw`, and the option errors of
`consume` / `produce` that exit 2 before anything connects."""

from __future__ import annotations

import json

import pytest

from freight.cli import main
from freight.cli.record_format import RecordFormat, Row, encode, row_dict
from freight.errors import ConfigError

ROW = Row("t", 2, 17, 1_700_000_000_000, b"k1", b"\x00hi", [("h", b"v"), ("n", None)])


def test_tokens_escapes_and_a_newline_at_the_end() -> None:
    assert RecordFormat("%t %p %o %k %s").render(ROW) == b"t 2 17 k1 \x00hi\n"
    assert RecordFormat(r"%T\t%K %S %h 100%%\n").render(ROW) == b"1700000000000\t2 3 h=v,n= 100%\n"
    assert RecordFormat("%s", "hex").render(ROW) == b"006869\n"
    assert RecordFormat("%k=%s", "repr").render(ROW) == b"b'k1'=b'\\x00hi'\n"
    missing = Row("t", 0, 0, 0, None, None)
    assert RecordFormat("%k %K %S").render(missing) == b" -1 -1\n"


@pytest.mark.parametrize("spec", ["%x", r"\q", "trailing %", "trailing \\"])
def test_a_bad_format_names_what_is_wrong(spec: str) -> None:
    with pytest.raises(ConfigError, match="--format"):
        RecordFormat(spec)


def test_encodings_and_json_rows() -> None:
    assert encode(b"\xff", "hex") == "ff" and encode(b"\xff", "base64") == "/w=="
    assert encode(b"\xff", "text") == "\ufffd" and encode(None, "repr") == "null"
    doc = row_dict(ROW, "base64")
    assert json.loads(json.dumps(doc))["value"] == "AGhp" and doc["headers"] == [["h", "dg=="], ["n", None]]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["consume", "t", "--on-bad-event", "ignore"], "--on-bad-event"),
        (["consume", "t", "--dead-letter-topic", "d"], "--dead-letter-topic"),
        (["consume", "t", "--raw", "--group", "g"], "--raw"),
        (["consume", "t", "--raw", "--skip-evicted"], "--raw"),
        (["consume", "t", "--raw", "--raw-encoding", "rot13"], "--raw-encoding"),
        (["consume", "t", "--raw-encoding", "hex"], "--raw-encoding"),
        (["consume", "t", "-f", "%z"], "--format"),
        (["consume", "t", "-f", "%s", "--json"], "--json or --format"),
        (["consume", "t", "-f", "%s", "--out", "x"], "--out"),
        (["consume", "t", "--partition", "0", "--group", "g"], "--partition"),
        (["produce", "t", "--key-separator", ""], "--key-separator"),
        (["produce", "t", __file__, "--key-separator", ":"], "--key-separator"),
    ],
)
def test_option_errors_exit_2_naming_the_option(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "-b", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
