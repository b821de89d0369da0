"""Mapping file validation: every problem names the file, the line, the entry and a reason."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent, indent

import pytest

from gateway.mapping import AuthorizationMode, DataTransferStatus, Mapping, load_mapping
from gateway.settings import RegistrationStatus
from gateway.yamlsource import SourceError, SourceIssue

EXAMPLE = Path(__file__).resolve().parents[1] / "mappings" / "example.yaml"


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def refused(path: Path) -> list[SourceIssue]:
    with pytest.raises(SourceError) as caught:
        load_mapping(path)
    return caught.value.issues


def only_issue(path: Path) -> SourceIssue:
    issues = refused(path)
    assert len(issues) == 1, issues
    return issues[0]


def assert_issue(issue: SourceIssue, path: Path, line: int, location: str, reason: str) -> None:
    assert issue.file == str(path)
    assert issue.line == line
    assert issue.location == location
    assert reason in issue.reason
    text = str(issue)
    assert text.startswith(f"{path}:{line}:")
    assert path.name in text
    assert location in text
    assert reason in text


# -- YAML-level problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        # libyaml's wording, or PyYAML's pure-Python parser's where PyYAML is built without libyaml
        pytest.param("version: 1\n\tchargers: []\n", 2, "tab character|cannot start any token", id="tab"),
        pytest.param(
            "version: 1\nchargers:\n  - id: CP1\n   name: x\n",
            4,
            "did not find expected '-' indicator|expected <block end>",
            id="bad-indentation",
        ),
        pytest.param(
            "version: 1\nchargers: [CP1, CP2\nauthorization: {}\n", 3, "flow sequence", id="unclosed-flow"
        ),
        pytest.param("version: 1\n---\nversion: 1\n", 2, "single document", id="two-documents"),
        pytest.param("version: 1\nchargers: *nowhere\n", 2, "undefined alias", id="undefined-alias"),
    ],
)
def test_yaml_syntax_error_names_the_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    issue = only_issue(path)
    assert_issue(issue, path, line, "", "YAML syntax")
    assert re.search(reason, issue.reason), issue.reason


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        chargers:
          - id: CP1
            name: first
            name: second
        """,
    )
    issue = only_issue(path)
    assert_issue(issue, path, 5, "chargers[0].name", "duplicate key (first at line 4)")


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "authorization:\n  mode: authorize-all\nversion: 1\nauthorization: {}\n")
    assert_issue(only_issue(path), path, 4, "authorization", "duplicate key (first at line 1)")


def test_file_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- id: CP1\n- id: CP2\n")
    assert_issue(only_issue(path), path, 1, "", "must be a YAML mapping")


def test_file_that_is_a_scalar_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "just some text\n")
    assert_issue(only_issue(path), path, 1, "", "must be a YAML mapping")


def test_missing_file_is_line_zero(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    issue = only_issue(path)
    assert_issue(issue, path, 0, "", "cannot read")
    assert str(issue) == f"{path}:0: cannot read: No such file or directory"


def test_unreadable_file_is_line_zero(tmp_path: Path) -> None:
    path = tmp_path / "a-directory.yaml"
    path.mkdir()
    assert_issue(only_issue(path), path, 0, "", "cannot read")


def test_file_not_in_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\n# Weidmüller AC SMART\n".encode("latin-1"))
    assert_issue(only_issue(path), path, 2, "", "not UTF-8")


# -- schema problems ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "location", "reason"),
    [
        pytest.param(
            """
            chargers:
              - id: CP1
              - id: CP2
                colour: red
            """,
            4,
            "chargers[1].colour",
            "unknown key",
            id="unknown-charger-key",
        ),
        pytest.param(
            "version: 1\nsite: Depot\n",
            2,
            "site",
            "unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            """
            authorization:
              mode: authorize-all
              greylist: []
            """,
            3,
            "authorization.greylist",
            "unknown key",
            id="unknown-authorization-key",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
              - id: CP2
                registration: Maybe
            """,
            4,
            "chargers[1].registration",
            "'Accepted', 'Pending' or 'Rejected'",
            id="bad-registration",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
              - id: CP2
                pattern: "C1-*"
            """,
            3,
            "chargers[1]",
            "give exactly one of 'id' or 'pattern'",
            id="id-and-pattern",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
              - name: nobody
                registration: Accepted
            """,
            3,
            "chargers[1]",
            "give exactly one of 'id' or 'pattern'",
            id="neither-id-nor-pattern",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
              - id: "CP 2/x"
            """,
            3,
            "chargers[1].id",
            "may only contain a-z A-Z 0-9",
            id="id-bad-characters",
        ),
        pytest.param(
            f"chargers:\n  - id: {'A' * 49}\n",
            2,
            "chargers[0].id",
            "longer than 48 characters",
            id="id-too-long",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
              - id: 49839108034579556
            """,
            3,
            "chargers[1].id",
            "write 49839108034579556 in quotes",
            id="numeric-id",
        ),
        pytest.param(
            """
            chargers:
              - pattern: "  "
            """,
            2,
            "chargers[0].pattern",
            "pattern is empty",
            id="blank-pattern",
        ),
        pytest.param(
            """
            chargers:
              - id: CP1
                retry_interval: 0
            """,
            3,
            "chargers[0].retry_interval",
            "greater than or equal to 1",
            id="retry-interval-zero",
        ),
        pytest.param("version: 2\n", 1, "version", "less than or equal to 1", id="version-2"),
        pytest.param(
            """
            version: 1
            authorization:
              mode: maybe
            """,
            3,
            "authorization.mode",
            "'authorize-all', 'authorize-none', 'all-except-blacklist' or 'none-except-whitelist'",
            id="bad-authorization-mode",
        ),
        pytest.param(
            """
            authorization:
              whitelist:
                - TAG-1
                - 123456
            """,
            4,
            "authorization.whitelist[1].id_tag",
            "write 123456 in quotes",
            id="numeric-bare-tag",
        ),
        pytest.param(
            """
            authorization:
              blacklist:
                - id_tag: ABCDEFGHIJKLMNOPQRSTU
            """,
            3,
            "authorization.blacklist[0].id_tag",
            "at most 20 characters",
            id="tag-too-long",
        ),
        pytest.param(
            """
            authorization:
              whitelist:
                - id_tag: TAG-1
                  expires: 2030-01-01
            """,
            4,
            "authorization.whitelist[0].expires",
            "unknown key",
            id="unknown-tag-key",
        ),
    ],
)
def test_schema_problem_names_line_entry_and_reason(
    tmp_path: Path, text: str, line: int, location: str, reason: str
) -> None:
    path = write(tmp_path, text)
    assert_issue(only_issue(path), path, line, location, reason)


def test_id_problem_points_at_the_id_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        chargers:
          - name: Bay 7
            id: "bay 7"
        """,
    )
    assert_issue(only_issue(path), path, 3, "chargers[0].id", "may only contain")


def test_every_schema_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        authorization:
          mode: sometimes
        chargers:
          - id: CP1
            registration: Maybe
        """,
    )
    issues = refused(path)
    assert [(issue.line, issue.location) for issue in issues] == [
        (2, "authorization.mode"),
        (5, "chargers[0].registration"),
    ]


# -- cross-checks -------------------------------------------------------------------------------------------


def test_duplicate_charger_id_across_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        chargers:
          - id: CP1
          - id: CP2
          - name: again
            id: CP1
        """,
    )
    assert_issue(only_issue(path), path, 5, "chargers[2].id", "id 'CP1' is already listed at chargers[0]")


def test_duplicate_pattern_across_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        chargers:
          - pattern: "C1-*"
          - pattern: "C1-*"
        """,
    )
    assert_issue(
        only_issue(path), path, 3, "chargers[1].pattern", "pattern 'C1-*' is already listed at chargers[0]"
    )


def test_charger_ids_differing_in_case_are_distinct(tmp_path: Path) -> None:
    path = write(tmp_path, "chargers:\n  - id: CP1\n  - id: cp1\n")
    assert [charger.id for charger in load_mapping(path).chargers] == ["CP1", "cp1"]


@pytest.mark.parametrize("list_name", ["whitelist", "blacklist"])
def test_duplicate_id_tag_is_case_insensitive(tmp_path: Path, list_name: str) -> None:
    path = write(
        tmp_path,
        f"""
        authorization:
          {list_name}:
            - abc-1
            - OTHER
            - id_tag: ABC-1
        """,
    )
    assert_issue(
        only_issue(path),
        path,
        5,
        f"authorization.{list_name}[2]",
        f"id tag 'ABC-1' is already listed at {list_name}[0]",
    )


def test_same_tag_on_whitelist_and_blacklist_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "authorization:\n  whitelist: [TAG-1]\n  blacklist: [tag-1]\n")
    loaded = load_mapping(path)
    assert loaded.authorization.whitelist[0].id_tag == "TAG-1"
    assert loaded.authorization.blacklist[0].id_tag == "tag-1"


def test_duplicate_data_transfer_answer_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        data_transfer:
          - {vendor_id: com.acme, message_id: ping, data: pong}
          - {vendor_id: com.acme}
          - {vendor_id: COM.ACME, message_id: PING, status: Rejected}
          - {vendor_id: com.acme, message_id: other}
          - {vendor_id: com.Acme}
        """,
    )
    issues = refused(path)
    assert [(issue.line, issue.location) for issue in issues] == [
        (4, "data_transfer[2]"),
        (6, "data_transfer[4]"),
    ]
    assert (
        "vendor 'COM.ACME' with message id 'PING' is already listed at data_transfer[0]" in issues[0].reason
    )
    assert "vendor 'com.Acme' with no message id is already listed at data_transfer[1]" in issues[1].reason


@pytest.mark.parametrize(
    ("entry", "location", "reason"),
    [
        ("{message_id: ping}", "data_transfer[0].vendor_id", "Field required"),
        ("{vendor_id: com.acme, status: Maybe}", "data_transfer[0].status", "'Accepted', 'Rejected'"),
        ("{vendor_id: com.acme, answer: pong}", "data_transfer[0].answer", "unknown key"),
        ("{vendor_id: ''}", "data_transfer[0].vendor_id", "at least 1 character"),
        ("{vendor_id: com.acme, message_id: 42}", "data_transfer[0].message_id", "write 42 in quotes"),
    ],
)
def test_bad_data_transfer_entry_names_line_entry_and_reason(
    tmp_path: Path, entry: str, location: str, reason: str
) -> None:
    path = write(tmp_path, f"version: 1\ndata_transfer:\n  - {entry}\n")
    assert_issue(only_issue(path), path, 3, location, reason)


def test_data_transfer_answer_by_vendor_and_message_id() -> None:
    """OCPP 1.6 §6.17: a listed vendor answers from its entries, UnknownMessageId for a message id none of them
    names (without a vendor-wide entry); None lets the gateway answer UnknownVendorId."""
    mapping = Mapping.model_validate(
        {
            "data_transfer": [
                {"vendor_id": "com.acme", "message_id": "ping", "data": "pong"},
                {"vendor_id": "com.wide", "status": "Rejected"},
            ]
        }
    )
    answer = mapping.data_transfer_answer
    assert answer("COM.ACME", "Ping") == (DataTransferStatus.ACCEPTED, "pong")
    assert answer("com.acme", "other") == (DataTransferStatus.UNKNOWN_MESSAGE_ID, None)
    assert answer("com.acme", None) == (DataTransferStatus.UNKNOWN_MESSAGE_ID, None)
    assert answer("com.wide", "x") == (DataTransferStatus.REJECTED, None)
    assert answer("com.nobody", "ping") is None


# -- good files ---------------------------------------------------------------------------------------------


def test_example_mapping_loads() -> None:
    loaded = load_mapping(EXAMPLE)
    assert loaded.version == 1
    assert [c.id for c in loaded.chargers if c.id is not None] == [
        "CP1",
        "49839108034579556",
        "ACSMART-01",
        "SICHARGE-D-01",
    ]
    assert [c.pattern for c in loaded.chargers if c.pattern is not None] == [
        "C1-*",
        "M1-*",
        "ACSMART-*",
        "SICHARGE-D-*",
        "SIM-*",
        "TEST-*",
    ]
    test_bench = loaded.chargers[-1]
    assert test_bench.registration is RegistrationStatus.PENDING
    assert test_bench.retry_interval == 60
    assert loaded.chargers[2].registration is RegistrationStatus.ACCEPTED  # the default
    auth = loaded.authorization
    assert auth.mode is AuthorizationMode.ALL_EXCEPT_BLACKLIST
    assert [entry.id_tag for entry in auth.whitelist] == ["04A2B3C4D5E6F7", "GW-1"]
    assert auth.whitelist[1].parent_id_tag == "FLEET"
    assert auth.whitelist[1].expiry_date == datetime(2030, 1, 1, tzinfo=UTC)
    assert [entry.id_tag for entry in auth.blacklist] == ["STOLEN-CARD-1"]
    assert loaded.data_transfer_answer("com.example.meter", "GetTariff") == (
        DataTransferStatus.ACCEPTED,
        '{"currency": "EUR", "price": 0.35}',
    )


@pytest.mark.parametrize("text", ["", "# nothing configured yet\n", "{}\n"])
def test_empty_file_yields_defaults(tmp_path: Path, text: str) -> None:
    loaded = load_mapping(write(tmp_path, text))
    assert loaded == Mapping()
    assert loaded.version == 1
    assert loaded.chargers == []
    assert loaded.authorization.mode is AuthorizationMode.AUTHORIZE_ALL
    assert loaded.authorization.whitelist == []
    assert loaded.authorization.blacklist == []


def test_whitelist_entry_as_bare_string_and_as_object(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        authorization:
          mode: none-except-whitelist
          whitelist:
            - "0042"
            - id_tag: GW-1
              parent_id_tag: FLEET
              expiry_date: 2030-06-01T12:00:00Z
        """,
    )
    bare, full = load_mapping(path).authorization.whitelist
    assert bare.id_tag == "0042"
    assert bare.expiry_date is None
    assert bare.parent_id_tag is None
    assert full.id_tag == "GW-1"
    assert full.parent_id_tag == "FLEET"
    assert full.expiry_date == datetime(2030, 6, 1, 12, tzinfo=UTC)
    assert full.key == "gw-1"


def test_quoted_numeric_id_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, 'chargers:\n  - id: "49839108034579556"\n    retry_interval: 30\n')
    (charger,) = load_mapping(path).chargers
    assert charger.id == "49839108034579556"
    assert charger.retry_interval == 30
    assert charger.matches("49839108034579556")


def test_shipped_json_schema_is_current() -> None:
    shipped = json.loads((EXAMPLE.parent / "mapping.schema.json").read_text())
    assert shipped == Mapping.model_json_schema(), "run: ocpp-gateway schema > mappings/mapping.schema.json"


# -- point lists (templates) --------------------------------------------------------------------------------

# A template `t` whose points the cases below vary, and entries that use it.
ONE_CHARGER = """
chargers:
  - id: CP1
    template: t
    bacnet: {base_instance: 1000}
    modbus: {unit: 1, base_address: 0}
"""


def template(points: str, chargers: str = ONE_CHARGER) -> str:
    """`templates: {t: {points: ...}}` with the points starting on line 4, then the chargers."""
    rows = indent(dedent(points).strip("\n"), " " * 6)
    return "templates:\n  t:\n    points:\n" + rows + "\n" + dedent(chargers).lstrip("\n")


@pytest.mark.parametrize(
    ("text", "line", "location", "reason"),
    [
        # 1. unknown keys, at every level
        pytest.param(
            template("      - source: online\n        colour: red\n"),
            5,
            "templates.t.points[0].colour",
            "unknown key",
            id="unknown-point-key",
        ),
        pytest.param(
            template(
                "      - source: online\n        bacnet:\n          type: binary-input\n          priority: 8\n"
            ),
            7,
            "templates.t.points[0].bacnet.priority",
            "unknown key",
            id="unknown-bacnet-key",
        ),
        pytest.param(
            template("      - {source: online, modbus: {table: discrete-input, offset: 0, bits: 1}}\n"),
            4,
            "templates.t.points[0].modbus.bits",
            "unknown key",
            id="unknown-modbus-key",
        ),
        pytest.param(
            "templates:\n  t:\n    points: []\n    vendor: amina\n",
            4,
            "templates.t.vendor",
            "unknown key",
            id="unknown-template-key",
        ),
        pytest.param(
            "chargers:\n  - id: CP1\n    modbus: {unit: 1, slave: 3}\n",
            3,
            "chargers[0].modbus.slave",
            "unknown key",
            id="unknown-placement-key",
        ),
        pytest.param(
            "templates:\n  generic ac:\n    points: []\n",
            2,
            "templates.generic ac",
            "template name 'generic ac' may only contain letters, digits, '_' and '-'",
            id="bad-template-name",
        ),
        # 2. unknown sources
        pytest.param(
            template("      - source: online\n      - source: 1/voltage\n"),
            5,
            "templates.t.points[1].source",
            "unknown connector value 'voltage'",
            id="unknown-source",
        ),
        pytest.param(
            template("      - source: 1/meter/Voltage/L4\n"),
            4,
            "templates.t.points[0].source",
            "unknown phase 'L4'",
            id="unknown-phase",
        ),
        pytest.param(
            template("      - source: 2\n"),
            4,
            "templates.t.points[0].source",
            "valid string",
            id="source-not-text",
        ),
        # 3. writable points on read-only sources
        pytest.param(
            template("      - source: 1/status\n        writable: true\n"),
            5,
            "templates.t.points[0].writable",
            "1/status is read-only: only 1/limit, 1/smart_charging and writable config/<key> points can be written",
            id="writable-status",
        ),
        pytest.param(
            template("      - source: config/Cst_MaxCurrentRotarySwitchSetting\n        writable: true\n"),
            5,
            "templates.t.points[0].writable",
            "config/Cst_MaxCurrentRotarySwitchSetting is read-only",
            id="writable-read-only-key",
        ),
        # 4. object and register types that do not fit the point
        pytest.param(
            template("      - source: 1/status\n        bacnet: {type: analog-input, offset: 0}\n"),
            5,
            "templates.t.points[0].bacnet.type",
            "1/status is a multistate point: use multi-state-input or multi-state-value",
            id="bacnet-kind",
        ),
        pytest.param(
            template(
                "      - source: 1/limit\n        writable: true\n        bacnet: {type: analog-input, offset: 0}\n"
            ),
            6,
            "templates.t.points[0].bacnet.type",
            "1/limit is writable: use analog-value",
            id="bacnet-writable-input",
        ),
        pytest.param(
            template(
                "      - source: online\n        bacnet: {type: binary-input, offset: 0, units: amperes}\n"
            ),
            5,
            "templates.t.points[0].bacnet.units",
            "units apply to analog objects only; online is a binary point",
            id="units-on-binary",
        ),
        pytest.param(
            template(
                "      - {source: 1/info, bacnet: {type: characterstring-value, offset: 0, cov_increment: 1}}\n"
            ),
            4,
            "templates.t.points[0].bacnet.cov_increment",
            "cov_increment applies to analog objects only",
            id="cov-on-string",
        ),
        pytest.param(
            template(
                "      - source: 1/meter/Power.Active.Import\n        bacnet:\n          type: analog-input\n"
                "          offset: 0\n          units: kilowatthours\n"
            ),
            8,
            "templates.t.points[0].bacnet.units",
            "unknown BACnet unit 'kilowatthours': did you mean kilowatt-hours?",
            id="unknown-units",
        ),
        pytest.param(
            template("      - source: online\n        bacnet: {type: binary-input}\n"),
            5,
            "templates.t.points[0].bacnet",
            "give exactly one of 'offset' (from the charger's base_instance) or 'instance'",
            id="offset-or-instance",
        ),
        pytest.param(
            template(
                "      - source: 1/meter/Power.Active.Import\n        modbus: {table: discrete-input, offset: 0}\n"
            ),
            5,
            "templates.t.points[0].modbus.table",
            "1/meter/Power.Active.Import is an analog point: a discrete-input holds one bit",
            id="analog-in-bits",
        ),
        pytest.param(
            template("      - source: 1/id_tag\n        modbus: {table: input, offset: 0, type: uint16}\n"),
            5,
            "templates.t.points[0].modbus.type",
            "1/id_tag is a string point: use type string (with length)",
            id="string-in-uint16",
        ),
        pytest.param(
            template("      - source: 1/status\n        modbus: {table: input, offset: 0, type: float32}\n"),
            5,
            "templates.t.points[0].modbus.type",
            "1/status is a multistate point: use int16 or uint16 (the state number)",
            id="multistate-in-float",
        ),
        pytest.param(
            template("      - source: 1/status\n        modbus: {table: input, offset: 0}\n"),
            5,
            "templates.t.points[0].modbus",
            "input registers need a 'type': int16, uint16, int32, uint32, float32 or string",
            id="register-without-type",
        ),
        pytest.param(
            template(
                "      - source: 1/smart_charging\n        writable: true\n"
                "        modbus: {table: coil, offset: 0, type: uint16}\n"
            ),
            6,
            "templates.t.points[0].modbus.type",
            "a coil holds one bit: leave out 'type'",
            id="type-on-coil",
        ),
        pytest.param(
            template(
                "      - source: 1/id_tag\n        modbus:\n          table: input\n          offset: 0\n"
                "          type: string\n          length: 10\n          scale: 10\n"
            ),
            10,
            "templates.t.points[0].modbus.scale",
            "scale applies to numeric registers of analog points only",
            id="scale-on-string",
        ),
        pytest.param(
            template("      - source: 1/id_tag\n        modbus: {table: input, offset: 0, type: string}\n"),
            5,
            "templates.t.points[0].modbus",
            "a string needs 'length'",
            id="string-without-length",
        ),
        pytest.param(
            template(
                "      - source: 1/meter/Current.Import/L1\n        modbus:\n          table: input\n"
                "          offset: 0\n          type: int16\n          word_order: little\n"
            ),
            9,
            "templates.t.points[0].modbus.word_order",
            "word_order applies to 32-bit types (int32, uint32, float32) only",
            id="word-order-on-16-bit",
        ),
        pytest.param(
            template("      - source: online\n        modbus: {table: coil, offset: 0}\n"),
            5,
            "templates.t.points[0].modbus.table",
            "online is read-only but any Modbus client can write a coil: use a discrete-input",
            id="read-only-coil",
        ),
        pytest.param(
            template(
                "      - source: 1/limit\n        writable: true\n"
                "        modbus: {table: input, offset: 0, type: float32}\n"
            ),
            6,
            "templates.t.points[0].modbus.table",
            "1/limit is writable: put it in holding registers",
            id="writable-input-register",
        ),
        # 5. BACnet object identifiers
        pytest.param(
            template(
                """
                      - {source: 1/session_energy, bacnet: {type: analog-input, offset: 0}}
                      - {source: 1/meter/Energy.Active.Import.Register, bacnet: {type: analog-input, offset: 2}}
                """,
                """
                chargers:
                  - id: CP1
                    template: t
                    bacnet: {base_instance: 1000}
                  - id: CP2
                    template: t
                    bacnet: {base_instance: 1002}
                """,
            ),
            12,
            "chargers[1].bacnet",
            "analog-input 1002 is used twice: CP1 1/meter/Energy.Active.Import.Register and CP2 1/session_energy",
            id="duplicate-instance-across-chargers",
        ),
        pytest.param(
            template(
                """
                      - {source: 1/session_energy, bacnet: {type: analog-input, offset: 3}}
                      - {source: 1/meter/Power.Active.Import, bacnet: {type: analog-input, offset: 3}}
                """
            ),
            5,
            "templates.t.points[1].bacnet",
            "analog-input 1003 is used twice: CP1 1/session_energy and CP1 1/meter/Power.Active.Import",
            id="duplicate-instance-in-template",
        ),
        pytest.param(
            template(
                "      - {source: 1/status, bacnet: {type: multi-state-input, offset: 5}}\n",
                "chargers:\n  - id: CP1\n    template: t\n    bacnet: {base_instance: 4194300}\n",
            ),
            8,
            "chargers[0].bacnet",
            "CP1 1/status would be multi-state-input 4194305: beyond 4194302, the highest BACnet instance",
            id="instance-beyond-range",
        ),
        pytest.param(
            template("      - {source: online, bacnet: {type: binary-input, instance: 4194303}}\n"),
            4,
            "templates.t.points[0].bacnet.instance",
            "less than or equal to 4194302",
            id="absolute-instance-beyond-range",
        ),
        # 6. Modbus registers
        pytest.param(
            template(
                """
                      - {source: 1/meter/Power.Active.Import, modbus: {table: input, offset: 0, type: float32}}
                      - {source: 1/status, modbus: {table: input, offset: 1, type: uint16}}
                """
            ),
            5,
            "templates.t.points[1].modbus",
            "input register 1 of CP1 1/status overlaps input registers 0-1 of CP1 1/meter/Power.Active.Import "
            "(unit 1)",
            id="overlap-in-template",
        ),
        pytest.param(
            template(
                "      - {source: 1/meter/Power.Active.Import, modbus: {table: holding, offset: 0, type: float32}}\n",
                """
                chargers:
                  - id: CP1
                    template: t
                    modbus: {unit: 3, base_address: 0}
                  - id: CP2
                    template: t
                    modbus: {unit: 3, base_address: 1}
                """,
            ),
            11,
            "chargers[1].modbus",
            "holding registers 1-2 of CP2 1/meter/Power.Active.Import overlap holding registers 0-1 of CP1 "
            "1/meter/Power.Active.Import (unit 3)",
            id="overlap-across-chargers",
        ),
        pytest.param(
            template(
                "      - {source: 1/meter/Power.Active.Import, modbus: {table: input, offset: 0, type: float32}}\n",
                "chargers:\n  - id: CP1\n    template: t\n    modbus: {base_address: 65535}\n",
            ),
            8,
            "chargers[0].modbus",
            "CP1 1/meter/Power.Active.Import would use input registers 65535-65536: beyond 65535, the last Modbus "
            "address",
            id="address-beyond-range",
        ),
        pytest.param(
            template(
                "      - {source: 1/status, modbus: {table: input, offset: 0, type: uint16}}\n",
                "chargers:\n  - id: CP1\n    template: t\n    modbus: {unit: 248, base_address: 0}\n",
            ),
            8,
            "chargers[0].modbus.unit",
            "less than or equal to 247",
            id="unit-beyond-247",
        ),
        # 7. entries and their templates
        pytest.param(
            template("      - source: online\n", "chargers:\n  - id: CP1\n    template: generic\n"),
            7,
            "chargers[0].template",
            "unknown template 'generic': the templates are t",
            id="unknown-template",
        ),
        pytest.param(
            "chargers:\n  - id: CP1\n    template: generic\n",
            3,
            "chargers[0].template",
            "unknown template 'generic': the file defines no templates (add it under 'templates')",
            id="unknown-template-none-defined",
        ),
        pytest.param(
            template(
                "      - {source: online, bacnet: {type: binary-input, offset: 0}}\n",
                "chargers:\n  - id: CP1\n    template: t\n",
            ),
            6,
            "chargers[0]",
            "template 't' places BACnet objects by offset: give this entry bacnet: {base_instance: ...}",
            id="bacnet-offset-without-base",
        ),
        pytest.param(
            template(
                "      - {source: online, modbus: {table: discrete-input, offset: 0}}\n",
                "chargers:\n  - id: CP1\n    template: t\n    modbus: {unit: 4}\n",
            ),
            8,
            "chargers[0].modbus",
            "template 't' places Modbus points by offset: give this entry modbus: {base_address: ...}",
            id="modbus-offset-without-base",
        ),
        pytest.param(
            template(
                "      - {source: online, bacnet: {type: binary-input, instance: 7}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n    slots: 5\n",
            ),
            7,
            "chargers[0].template",
            "template 't' gives points[0] (online) the absolute instance 7: a pattern with 5 slots needs offsets",
            id="absolute-instance-in-pattern",
        ),
        pytest.param(
            template(
                "      - {source: 1/status, modbus: {table: input, address: 7, type: uint16}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n",
            ),
            7,
            "chargers[0].template",
            "template 't' gives points[0] (1/status) the absolute address 7: a pattern with 10 slots needs offsets",
            id="absolute-address-in-pattern",
        ),
        pytest.param(
            template(
                "      - {source: online, bacnet: {type: binary-input, offset: 12}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n    slots: 2\n"
                "    bacnet: {base_instance: 0, stride: 10}\n",
            ),
            9,
            "chargers[0].bacnet.stride",
            "template 't' uses BACnet offsets up to 12: stride 10 leaves room for offsets 0-9 only",
            id="bacnet-offsets-beyond-stride",
        ),
        pytest.param(
            template(
                "      - {source: 1/meter/Power.Active.Import, modbus: {table: input, offset: 99, type: float32}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n    modbus: {base_address: 0}\n",
            ),
            8,
            "chargers[0].modbus",
            "template 't' uses Modbus offsets up to 100: stride 100 leaves room for offsets 0-99 only",
            id="modbus-offsets-beyond-default-stride",
        ),
        pytest.param(
            template("      - source: online\n", "chargers:\n  - id: CP1\n    template: t\n    slots: 4\n"),
            8,
            "chargers[0].slots",
            "slots is for pattern entries: an id entry is one charger",
            id="slots-on-id",
        ),
        pytest.param(
            template(
                "      - source: online\n",
                "chargers:\n  - id: CP1\n    template: t\n    bacnet:\n      base_instance: 0\n      stride: 50\n",
            ),
            10,
            "chargers[0].bacnet.stride",
            "stride is for pattern entries: an id entry has one slot",
            id="stride-on-id",
        ),
        pytest.param(
            "chargers:\n  - pattern: C1-*\n    bacnet: {base_instance: 100}\n",
            3,
            "chargers[0].bacnet",
            "'bacnet' places a template's points: this entry has no template",
            id="placement-without-template",
        ),
        pytest.param(
            template(
                "      - {source: 1/status, modbus: {table: input, offset: 0, type: uint16}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n"
                "    modbus: {unit: 240, base_address: 0, unit_per_slot: true}\n",
            ),
            8,
            "chargers[0].modbus.unit",
            "with unit_per_slot, 10 slots from unit 240 need units up to 249: the last Modbus unit is 247",
            id="units-per-slot-beyond-247",
        ),
        # 8. within a template
        pytest.param(
            template(
                "      - source: 1/meter/Current.Import/L1\n      - source: 1/meter/Current.Import/L1@Outlet\n"
            ),
            5,
            "templates.t.points[1].source",
            "source 1/meter/Current.Import/L1@Outlet (1/meter/Current.Import/L1) is already in points[0]",
            id="duplicate-source",
        ),
        pytest.param(
            template(
                "      - source: 1/limit\n        writable: true\n        minimum: 32\n        maximum: 6\n"
            ),
            6,
            "templates.t.points[0].minimum",
            "minimum 32 is above maximum 6",
            id="minimum-above-maximum",
        ),
        pytest.param(
            template("      - source: 1/limit\n        writable: true\n        maximum: 2000000\n"),
            6,
            "templates.t.points[0].maximum",
            "maximum 2000000 is above 1/limit's own maximum 1000000",
            id="maximum-beyond-source",
        ),
        pytest.param(
            template("      - source: 1/meter/Power.Active.Import\n        minimum: 0\n"),
            5,
            "templates.t.points[0].minimum",
            "minimum bounds what the BMS may write: only for writable analog points",
            id="limits-on-read-only",
        ),
        pytest.param(
            template(
                """
                      - source: 1/limit
                        writable: true
                        minimum: 6
                        maximum: 32
                        bacnet: {type: analog-value, offset: 0, relinquish_default: 40}
                """
            ),
            8,
            "templates.t.points[0].bacnet.relinquish_default",
            "relinquish_default 40 is outside the write limits 6..32",
            id="relinquish-outside-limits",
        ),
        pytest.param(
            template(
                "      - source: 1/smart_charging\n        writable: true\n"
                "        bacnet: {type: binary-value, offset: 0, relinquish_default: 1}\n"
            ),
            6,
            "templates.t.points[0].bacnet.relinquish_default",
            "relinquish_default of binary 1/smart_charging is true or false",
            id="relinquish-binary-not-bool",
        ),
        pytest.param(
            template(
                "      - source: 1/status\n"
                "        bacnet: {type: multi-state-value, offset: 0, relinquish_default: 1}\n"
            ),
            5,
            "templates.t.points[0].bacnet.relinquish_default",
            "relinquish_default applies to writable points only (writable: true)",
            id="relinquish-on-read-only",
        ),
        pytest.param(
            template("      - {source: 1/status, name: Status}\n      - {source: 0/status, name: Status}\n"),
            5,
            "templates.t.points[1].name",
            "name 'Status' is already used by points[0]",
            id="duplicate-name",
        ),
        pytest.param(
            template(
                "      - {source: online, bacnet: {type: binary-input, offset: 0, name: Online}}\n",
                "chargers:\n  - pattern: C1-*\n    template: t\n    bacnet: {base_instance: 0}\n",
            ),
            4,
            "templates.t.points[0].bacnet.name",
            "object name 'Online' would be the same for each of the 10 chargers using template 't': "
            "put {charger} in it",
            id="object-name-without-charger",
        ),
        pytest.param(
            template("      - {source: config/VendorMode, bacnet: {type: multi-state-value, offset: 0}}\n"),
            4,
            "templates.t.points[0].bacnet.type",
            "config/VendorMode has no state texts: show it as analog-*, binary-* or characterstring-value",
            id="untyped-key-as-multistate",
        ),
    ],
)
def test_bad_point_list_names_line_entry_and_reason(
    tmp_path: Path, text: str, line: int, location: str, reason: str
) -> None:
    path = write(tmp_path, text)
    assert_issue(only_issue(path), path, line, location, reason)


def test_repeated_clashes_are_reported_once_with_a_count(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        template(
            """
                  - {source: online, bacnet: {type: binary-input, offset: 0}}
                  - {source: 1/status, bacnet: {type: multi-state-input, offset: 1}}
            """,
            """
            chargers:
              - pattern: C1-*
                template: t
                slots: 3
                bacnet: {base_instance: 1000}
              - id: CP1
                template: t
                bacnet: {base_instance: 1100}
            """,
        ),
    )
    issue = only_issue(path)
    assert_issue(
        issue,
        path,
        13,
        "chargers[1].bacnet",
        "binary-input 1100 is used twice: C1-* slot 1 online and CP1 online (and 1 more like it)",
    )


def test_every_point_list_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        template(
            """
                  - source: 1/status
                    writable: true
                  - source: online
                    modbus: {table: coil, offset: 0}
            """,
            "chargers:\n  - id: CP1\n    template: missing\n  - id: CP2\n    slots: 3\n",
        ),
    )
    assert [(issue.line, issue.location) for issue in refused(path)] == [
        (5, "templates.t.points[0].writable"),
        (7, "templates.t.points[1].modbus.table"),
        (10, "chargers[0].template"),
        (12, "chargers[1].slots"),
    ]


def test_writable_points_on_writable_sources_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        template(
            """
                  - {source: 1/limit, writable: true, minimum: 6, maximum: 32,
                     bacnet: {type: analog-value, offset: 0, relinquish_default: 16},
                     modbus: {table: holding, offset: 0, type: float32, word_order: little}}
                  - {source: 1/smart_charging, writable: true,
                     bacnet: {type: binary-value, offset: 1, relinquish_default: true},
                     modbus: {table: coil, offset: 2}}
                  - {source: config/HeartbeatInterval, writable: true,
                     bacnet: {type: analog-value, offset: 3}, modbus: {table: holding, offset: 3, type: uint32}}
                  - {source: 1/status, modbus: {table: holding, offset: 5, type: uint16}}
            """
        ),
    )
    loaded = load_mapping(path)
    limit = loaded.templates["t"].points[0]
    assert limit.bacnet is not None and limit.bacnet.relinquish_default == 16
    assert limit.modbus is not None and limit.modbus.width == 2
    assert loaded.template_for("CP1") is loaded.templates["t"]
