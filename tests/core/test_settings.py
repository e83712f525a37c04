"""Config validation: errors name file, key and expectation; every field is documented; demo/default load."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from newsradar import settings as config
from newsradar.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _models(model: type[BaseModel], seen: set) -> None:
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        for arg in getattr(field.annotation, "__args__", ()) + (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)


def test_every_config_field_has_a_description():
    seen: set = set()
    _models(config.Settings, seen)
    assert config.SourceSettings in seen and config.DigestSettings in seen


@pytest.mark.parametrize("name", ["default.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    settings = config.load(ROOT / "config" / name)
    assert [t.name for t in settings.watchlist.terms] == ["이차전지", "특화단지", "CIBF", "포항"]


def test_demo_file_urls_resolve_next_to_the_config():
    settings = config.load(ROOT / "config" / "demo.yaml")
    for source in settings.sources:
        assert source.url.startswith("file:///")
        assert Path(source.url[len("file://"):]).exists()


def test_errors_name_file_key_and_expectation(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "sources:\n  - name: a\n    url: http://x\n    intervall: 5\n  - name: b\n    kind: html\n    url: http://y\n"
        "digest:\n  time: '25:00'\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "sources.0.intervall: unknown key" in message
    assert "link_selector" in message
    assert "digest.time" in message


def test_yaml_syntax_error_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("sources: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.yaml")


def test_duplicate_source_names_and_bad_zone():
    with pytest.raises(ConfigError, match="repeated: a"):
        config.parse({"sources": [{"name": "a", "url": "u"}, {"name": "a", "url": "v"}]})
    with pytest.raises(ConfigError, match="unknown IANA time zone"):
        config.parse({"timezone": "Asia/Nowhere"})


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    assert config.secret("SLACK_BOT_TOKEN") == "xoxb-test"
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    assert config.secret("SLACK_BOT_TOKEN") is None


def _keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield prefix + name
        for arg in getattr(field.annotation, "__args__", ()) + (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                inner = "[]." if getattr(field.annotation, "__origin__", None) is list else "."
                yield from _keys(arg, prefix + name + inner)


def test_readme_config_reference_lists_every_key():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reference = readme.split("## Config reference", 1)[1]
    missing = [key for key in _keys(config.Settings) if f"`{key}`" not in reference]
    assert not missing, f"README config reference lacks: {missing}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block.splitlines()[1] and "make test" in first_block.splitlines()[2]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
