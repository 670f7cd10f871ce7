"""Job-spec validation and job states, as tables."""

from __future__ import annotations

import json
import re

import pytest

from queuectl.errors import InvalidInput
from queuectl.models import (MAX_COMMAND_BYTES, MAX_ID_LENGTH, JobState, NewJob,
                             new_job_id, parse_spec_json, parse_spec_line, validate_id,
                             validate_spec)


def spec(**fields) -> str:
    return json.dumps({"command": "echo hi", **fields})


# -- good specs -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('{"command": "echo hi"}', NewJob(command="echo hi")),
    ('{"command": "  spaced  "}', NewJob(command="  spaced  ")),
    (spec(id="job-1", priority=-5, max_retries=0, timeout="30s", delay="5m"),
     NewJob(command="echo hi", id="job-1", priority=-5, max_retries=0, timeout=30.0, delay=300.0)),
    (spec(priority=3.0, max_retries=2.0), NewJob(command="echo hi", priority=3, max_retries=2)),
    (spec(priority=2**31 - 1), NewJob(command="echo hi", priority=2**31 - 1)),
    (spec(priority=-(2**31)), NewJob(command="echo hi", priority=-(2**31))),
    (spec(max_retries=1000), NewJob(command="echo hi", max_retries=1000)),
    (spec(timeout=2.5), NewJob(command="echo hi", timeout=2.5)),
    (spec(delay=0), NewJob(command="echo hi", delay=0.0)),
    (spec(run_at="2023-11-14T22:13:20Z"), NewJob(command="echo hi", run_at=1_700_000_000.0)),
    (spec(run_at="2023-11-14T22:13:20"), NewJob(command="echo hi", run_at=1_700_000_000.0)),
    (spec(id=None, priority=None, max_retries=None, timeout=None, run_at=None),
     NewJob(command="echo hi")),
    ('{"command": "printf \'%s\\\\n\' \\"a b\\" | wc -l"}',
     NewJob(command="printf '%s\\n' \"a b\" | wc -l")),
    ('  {"command": "x"}\n', NewJob(command="x")),
])
def test_good_specs(text, expected):
    assert parse_spec_json(text) == expected


@pytest.mark.parametrize("job_id", [
    "it's", 'say"hi"', "100%", "a_b", "%_%", "_", "%", "back\\slash", "ünïcödé", "日本語",
    "😀", "-leading-dash", "a/b", "a" * MAX_ID_LENGTH, "x",
])
def test_ids_with_quotes_wildcards_and_unicode_are_accepted(job_id):
    assert parse_spec_json(spec(id=job_id)).id == job_id
    assert validate_id(job_id) == job_id


def test_validate_spec_takes_flag_values_as_a_dict():
    job = validate_spec({"command": "make", "priority": 2, "timeout": "1m"})
    assert job == NewJob(command="make", priority=2, timeout=60.0)


# -- bad specs ------------------------------------------------------------------------------

DEEP = "[" * 10_000 + "]" * 10_000

BAD = [
    # (label, text, fragment of the message)
    ("empty", "", "invalid JSON"),
    ("blank", "   \n", "invalid JSON"),
    ("unterminated", '{"command": "x"', "invalid JSON"),
    ("trailing comma", '{"command": "x",}', "invalid JSON"),
    ("single quotes", "{'command': 'x'}", "invalid JSON"),
    ("two objects", '{"command": "x"} {"command": "y"}', "invalid JSON"),
    ("garbage", "echo hi", "invalid JSON"),
    ("array", '[{"command": "x"}]', "JSON object"),
    ("string", '"echo hi"', "JSON object"),
    ("number", "42", "JSON object"),
    ("null", "null", "JSON object"),
    ("true", "true", "JSON object"),
    ("no command", "{}", "command is required"),
    ("null command", '{"command": null}', "command is required"),
    ("empty command", '{"command": ""}', "command must not be empty"),
    ("whitespace command", '{"command": " \\t\\n "}', "command must not be empty"),
    ("number command", '{"command": 5}', "command must be a string"),
    ("bool command", '{"command": true}', "command must be a string"),
    ("list command", '{"command": ["echo", "hi"]}', "command must be a string"),
    ("object command", '{"command": {"run": "x"}}', "command must be a string"),
    ("NUL in command", '{"command": "echo \\u0000"}', "NUL"),
    ("lone surrogate in command", '{"command": "echo \\ud800"}', "command"),
    ("huge command", json.dumps({"command": "x" * (MAX_COMMAND_BYTES + 1)}),
     "131,072 bytes; /bin/sh -c takes at most 131,071"),
    ("huge in UTF-8 only", json.dumps({"command": "é" * 70_000}), "140,000 bytes"),
    ("unknown key", spec(bogus=1), "unknown key 'bogus'"),
    ("wrong-case key", spec(Command="x"), "unknown key 'Command'"),
    ("misspelt key", spec(max_retry=3), "unknown key 'max_retry'"),
    ("duplicate key", '{"command": "a", "command": "b"}', "duplicate key 'command'"),
    ("duplicate nested key", '{"command": "a", "id": "x", "id": "y"}', "duplicate key 'id'"),
    ("priority string", spec(priority="5"), "priority must be a whole number"),
    ("priority fraction", spec(priority=1.5), "priority must be a whole number"),
    ("priority bool", spec(priority=True), "priority must be a whole number"),
    ("priority list", spec(priority=[1]), "priority must be a whole number"),
    ("priority too big", spec(priority=2**31), "priority must be between"),
    ("priority too small", spec(priority=-(2**31) - 1), "priority must be between"),
    ("priority 10**30", spec(priority=10**30), "priority must be between"),
    ("priority 1e400", '{"command": "x", "priority": 1e400}', "priority must be a whole number"),
    ("priority 1e30", '{"command": "x", "priority": 1e30}', "priority must be between"),
    ("priority NaN", '{"command": "x", "priority": NaN}', "NaN is not allowed"),
    ("priority Infinity", '{"command": "x", "priority": Infinity}', "Infinity is not allowed"),
    ("priority -Infinity", '{"command": "x", "priority": -Infinity}', "Infinity is not allowed"),
    ("5000-digit integer", '{"command": "x", "priority": ' + "9" * 5000 + "}", "invalid JSON"),
    ("5000-digit top level", "9" * 5000, "invalid JSON"),
    ("max_retries negative", spec(max_retries=-1), "max_retries must be between 0 and"),
    ("max_retries too big", spec(max_retries=1001), "max_retries must be between 0 and"),
    ("max_retries string", spec(max_retries="3"), "max_retries must be a whole number"),
    ("max_retries bool", spec(max_retries=False), "max_retries must be a whole number"),
    ("max_retries 10**30", spec(max_retries=10**30), "max_retries must be between"),
    ("timeout zero", spec(timeout=0), "timeout must be greater than 0"),
    ("timeout negative", spec(timeout=-1), "timeout"),
    ("timeout negative text", spec(timeout="-5s"), "timeout"),
    ("timeout garbage", spec(timeout="soon"), "timeout"),
    ("timeout bool", spec(timeout=True), "timeout"),
    ("timeout list", spec(timeout=[5]), "timeout"),
    ("timeout NaN", '{"command": "x", "timeout": NaN}', "NaN is not allowed"),
    ("timeout Infinity", '{"command": "x", "timeout": Infinity}', "Infinity is not allowed"),
    ("timeout 1e400", '{"command": "x", "timeout": 1e400}', "timeout"),
    ("timeout 10**30", spec(timeout=10**30), "timeout"),
    ("timeout 10**400", '{"command": "x", "timeout": 1' + "0" * 400 + "}", "timeout"),
    ("timeout 11 years", spec(timeout="4020d"), "timeout"),
    ("delay negative", spec(delay=-1), "delay"),
    ("delay garbage", spec(delay="later"), "delay"),
    ("delay bool", spec(delay=False), "delay"),
    ("delay huge", spec(delay=10**30), "delay"),
    ("run_at number", spec(run_at=1_700_000_000), "run_at must be an ISO 8601"),
    ("run_at garbage", spec(run_at="tomorrow"), "run_at"),
    ("run_at and delay", spec(run_at="2030-01-01T00:00:00Z", delay="5s"), "not both"),
    ("deep nesting", DEEP, "invalid JSON"),
    ("deep nesting inside", '{"command": "x", "priority": ' + DEEP + "}", "invalid JSON"),
    ("deep objects", '{"a":' * 10_000 + "1" + "}" * 10_000, "invalid JSON"),
    ("id number", spec(id=5), "id must be a string"),
    ("id empty", spec(id=""), "id must not be empty"),
    ("id too long", spec(id="a" * (MAX_ID_LENGTH + 1)), f"at most {MAX_ID_LENGTH}"),
    ("id 10,000 chars", spec(id="a" * 10_000), "10000 characters"),
    ("id space", spec(id="a b"), "whitespace or control"),
    ("id leading space", spec(id=" a"), "whitespace or control"),
    ("id tab", spec(id="a\tb"), "U+0009"),
    ("id newline", spec(id="a\nb"), "U+000A"),
    ("id NUL", spec(id="a\x00b"), "U+0000"),
    ("id escape", spec(id="a\x1b[31mb"), "U+001B"),
    ("id DEL", spec(id="a\x7fb"), "U+007F"),
    ("id NEL", spec(id="a\x85b"), "U+0085"),
    ("id no-break space", spec(id="a\xa0b"), "U+00A0"),
    ("id zero-width space", spec(id="a\u200bb"), "U+200B"),
    ("id bidi override", spec(id="a\u202eb"), "U+202E"),
    ("id line separator", spec(id="a\u2028b"), "U+2028"),
    ("id lone surrogate", '{"command": "x", "id": "a\\udc80"}', "U+DC80"),
    ("id private use", spec(id="a\ue000"), "U+E000"),
    ("id list", spec(id=["a"]), "id must be a string"),
]


@pytest.mark.parametrize("text, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_specs_are_invalid_input_with_a_one_line_message(text, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_spec_json(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and "\r" not in message
    assert 0 < len(message) < 300
    assert info.value.exit_code == 2


LINES = [b[1] for b in BAD] + [
    '{"command": "x"}', '  {"command": "x"}  \r\n', '\t{"command": "x", "priority": 2}\n',
    '{"command": "x"} {"command": "y"}', '{"command": "x"},', '[{"command": "x"}]', "",
    '{"command": "x"}\x0c', '\x0c{"command": "x"}', '{"command": "x", "env": {"A": "1", "A": "2"}}',
    '{"command": NaN}', '{"command": "x", "timeout": 1e999}', "[" * 100_000, '"just text"',
]


@pytest.mark.parametrize("line", LINES, ids=range(len(LINES)))
def test_parse_spec_line_answers_as_parse_spec_json(line):
    """The fast path for file lines gives parse_spec_json's job, or its very error."""
    def answer(parse):
        try:
            return parse(line)
        except InvalidInput as exc:
            return ("error", str(exc))

    assert answer(parse_spec_line) == answer(parse_spec_json)


@pytest.mark.parametrize("value", [None, [], "echo", 5, ["command"]], ids=repr)
def test_validate_spec_rejects_non_objects(value):
    with pytest.raises(InvalidInput, match="JSON object"):
        validate_spec(value)


def test_unknown_key_message_is_short_even_for_a_huge_key():
    with pytest.raises(InvalidInput) as info:
        parse_spec_json(json.dumps({"command": "x", "k" * 10_000: 1}))
    assert len(str(info.value)) < 300


# -- states and ids -------------------------------------------------------------------------

@pytest.mark.parametrize("text, state", [
    ("pending", JobState.PENDING), ("PENDING", JobState.PENDING), (" dead ", JobState.DEAD),
    ("running", JobState.RUNNING), ("processing", JobState.RUNNING),
    ("Completed", JobState.COMPLETED), ("failed", JobState.FAILED),
])
def test_state_parse(text, state):
    assert JobState.parse(text) is state


@pytest.mark.parametrize("text", ["", "done", "waiting", "pend", "dlq"])
def test_state_parse_rejects_unknown_names_listing_the_choices(text):
    with pytest.raises(InvalidInput, match="pending, running, completed, failed, dead"):
        JobState.parse(text)


def test_the_longest_command_sh_can_take_is_accepted():
    assert len(validate_spec({"command": "x" * MAX_COMMAND_BYTES}).command) == MAX_COMMAND_BYTES


def test_generated_ids_are_short_unique_and_url_safe():
    made = {new_job_id() for _ in range(10_000)}
    assert len(made) == 10_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,16}", i) for i in made)
    assert all(validate_id(i) == i for i in list(made)[:100])
