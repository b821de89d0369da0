"""Mapping file validation: every problem names the file, the line, the entry and a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest

from gateway.mapping import AuthorizationMode, Mapping, load_mapping
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
        pytest.param("version: 1\n\tchargers: []\n", 2, "cannot start any token", id="tab"),
        pytest.param(
            "version: 1\nchargers:\n  - id: CP1\n   name: x\n",
            4,
            "expected <block end>",
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
    assert reason in issue.reason


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
    assert [c.pattern for c in loaded.chargers if c.pattern is not None] == ["C1-*", "M1-*", "TEST-*"]
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
