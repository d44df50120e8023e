"""``plan run`` settings: the YAML config file, its schema, merging with flags, range checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.live.config import (
    RunSettings,
    check_settings,
    load_run_config,
    merge_settings,
    run_config_schema,
)


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_schema_is_valid_and_covers_every_setting() -> None:
    schema = run_config_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(RunSettings().as_dict())


def test_load_resolves_paths_and_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "profile: prof\nmodel: llama\ninterval: 60\nmax_gpu_budget: 16.0\n"
        "warmup_trace: /abs/trace.jsonl\nload_quantile: 0.9\nno_correction: true\n",
    )
    values = load_run_config(path)
    assert values["profile"] == tmp_path / "prof"
    assert values["warmup_trace"] == Path("/abs/trace.jsonl")
    assert values["max_gpu_budget"] == 16 and isinstance(values["max_gpu_budget"], int)
    assert values["interval"] == 60.0 and isinstance(values["interval"], float)
    s = RunSettings(**values)
    assert s.model == "llama" and s.no_correction and s.load_quantile == 0.9


def test_empty_file_is_no_settings(tmp_path: Path) -> None:
    assert load_run_config(write(tmp_path, "# nothing\n")) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: m\nintervall: 60\n",
            r"run\.yaml:2: intervall: unknown key \(did you mean interval\?\)",
        ),
        (
            "model: m\nmax-gpu-budget: 4\n",
            r":2: max-gpu-budget: unknown key \(did you mean max_gpu_budget\?\)",
        ),
        ("model: m\n\ninterval: -5\n", r"run\.yaml:3: interval: must be > 0 s, got -5"),
        ("max_gpu_budget: eight\n", r":1: max_gpu_budget: expected an integer, got 'eight'"),
        ("max_gpu_budget: 0\n", r":1: max_gpu_budget: must be >= 1 or -1 \(no budget\), got 0"),
        (
            "connector: k8s\n",
            r":1: connector: expected one of none, virtual, kubernetes, got 'k8s'",
        ),
        ("ttft: .nan\n", r":1: ttft: expected a finite number, got nan"),
        ("load_quantile: 1.5\n", r":1: load_quantile: must be < 1, got 1.5"),
        ("metrics_port: 70000\n", r":1: metrics_port: must be <= 65535, got 70000"),
        ("etcd: localhost:2379\n", r":1: etcd: must be an http:// or https:// URL"),
        ("no_correction: 3\n", r":1: no_correction: expected a boolean \(true or false\), got 3"),
        ("model: m\ninterval: x\nttft: -1\n", r":2: interval: .* \(and 1 more problem\(s\)\)"),
        ("- interval: 60\n", r"run\.yaml:1: expected a mapping of plan run settings"),
        ("a: 1\n---\nb: 2\n", r"run\.yaml:3: expected one YAML document, got 2"),
        ("model: m\ninterval: [60\n", r"run\.yaml:3: invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        load_run_config(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_unreadable_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read config"):
        load_run_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"model: m\ninterval: \xff\n")
    with pytest.raises(InputError, match=r"bin\.yaml:2: not UTF-8"):
        load_run_config(bad)


def test_print_config_output_is_a_valid_config(tmp_path: Path) -> None:
    s = RunSettings(profile=Path("/p"), model="m", connector="virtual", state=Path("/s.json"))
    path = write(tmp_path, yaml.safe_dump(s.as_dict()))
    assert RunSettings(**load_run_config(path)) == s


def test_merge_precedence_flag_over_file_over_default() -> None:
    defaults = RunSettings().as_dict()
    cli = {**defaults, "interval": 180.0, "ttft": 300.0, "output": "json"}
    file_values = {"interval": 60.0, "ttft": 900.0, "itl": 20.0}
    merged = merge_settings(cli, explicit={"interval"}, file_values=file_values)
    assert merged.interval == 180.0  # given on the command line (even at its default value)
    assert merged.ttft == 900.0  # not given: the file's
    assert merged.itl == 20.0
    assert merged.isl == RunSettings().isl  # neither: the default
    with pytest.raises(InputError, match="unknown plan run setting"):
        merge_settings(cli, set(), {"bogus": 1})


@pytest.mark.parametrize(
    ("changes", "error", "expected"),
    [
        ({"profile": None}, UsageError, "--profile"),
        ({"model": None}, UsageError, "--model"),
        ({"connector": "virtual"}, UsageError, "neither was given"),
        ({"connector": "virtual", "state": Path("s"), "etcd": "http://e"}, UsageError, "both"),
        ({"state": Path("s")}, UsageError, "belong to --connector virtual"),
        ({"interval": 0.0}, InputError, "--interval must be a finite number > 0"),
        ({"isl": -1.0}, InputError, "--isl must be"),
        ({"startup_s": -1.0}, InputError, "--startup-s must be"),
        ({"max_gpu_budget": -2}, InputError, "--max-gpu-budget must be >= 1 or -1"),
        ({"min_endpoint": 0}, InputError, "--min-endpoint must be >= 1"),
        ({"load_quantile": 1.0}, InputError, "--load-quantile must be in"),
        ({"ttft_quantile": 1.0}, InputError, "--ttft-quantile must be in"),
        ({"metrics_port": -1}, InputError, "--metrics-port"),
        ({"max_ticks": 0}, InputError, "--max-ticks must be >= 1"),
        ({"scale_down_patience": -1}, InputError, "--scale-down-patience"),
    ],
)
def test_check_settings(changes: dict, error: type[Exception], expected: str) -> None:
    base = {"profile": Path("p"), "model": "m"}
    with pytest.raises(error, match=expected):
        check_settings(RunSettings(**{**base, **changes}))


def test_check_settings_accepts_the_defaults_with_profile_and_model() -> None:
    check_settings(RunSettings(profile=Path("p"), model="m"))
    check_settings(RunSettings(profile=Path("p"), model="m", connector="virtual", etcd="http://e"))


def test_resolve_run_settings_precedence_flag_file_profile_default(tmp_path: Path) -> None:
    """flag > config file > the profile's profile.json > default, with where each came from."""
    import json

    from dynamo_plan.live.config import resolve_run_settings

    prof = tmp_path / "prof"
    prof.mkdir()  # profile.json alone is enough here: the profile is loaded at start, not now
    meta = {
        "model": "m",
        "parallelism": {"prefill": {"tp": 2}, "decode": {"tp": 4}},
        "sla": {"isl": 1000, "osl": 100, "ttft": 200, "itl": 20},
    }
    (prof / "profile.json").write_text(json.dumps(meta))
    cfg = write(tmp_path, f"profile: {prof}\nitl: 25\ninterval: 60\n")
    cli = {**RunSettings().as_dict(), "profile": None, "ttft": 300.0}
    settings, sources, notes = resolve_run_settings(cli, {"ttft"}, cfg)
    assert (settings.ttft, settings.itl, settings.isl, settings.osl) == (300.0, 25.0, 1000.0, 100.0)
    assert (settings.prefill_engine_num_gpu, settings.decode_engine_num_gpu) == (2, 4)
    assert settings.model == "m" and settings.interval == 60.0 and settings.startup_s == 120.0
    assert {k: sources[k] for k in ("ttft", "itl", "isl", "model", "interval", "startup_s")} == {
        "ttft": "flag",
        "itl": "config file",
        "isl": "profile.json",
        "model": "profile.json",
        "interval": "config file",
        "startup_s": "default",
    }
    assert len(notes) == 2 and notes[0].startswith("--ttft 300 ms overrides the profile's 200 ms")
    bare, bare_sources, bare_notes = resolve_run_settings(
        {**RunSettings().as_dict(), "profile": tmp_path}, {"profile"}, None
    )  # a directory without profile.json: the defaults
    assert bare == RunSettings(profile=tmp_path) and bare_notes == []
    assert bare_sources["ttft"] == "default"
