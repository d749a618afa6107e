"""The Qwen teachers' config rules: the limits refused with their messages, the server URLs, the reserved keys."""

import pytest
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig, preflight

LIMITS = "tensor_parallel_size must be >= 1 and gpu_memory_utilization in (0, 1]"
SERVERS = "max_requests_per_server must be >= 1 and max_tokens_per_server >= 0"


@pytest.mark.parametrize("fields", [{"gpu_memory_utilization": 1.0}, {"gpu_memory_utilization": 0.01},
                                    {"tensor_parallel_size": 1}, {"max_requests_per_server": 1},
                                    {"max_tokens_per_server": 0}])
def test_the_limits_take_their_boundary_values(fields):
    config = QwenLlmConfig(model="m", **fields)
    assert all(getattr(config, k) == v for k, v in fields.items())


@pytest.mark.parametrize(("fields", "message"), [
    ({"gpu_memory_utilization": 0.0}, LIMITS), ({"gpu_memory_utilization": 1.01}, LIMITS),
    ({"gpu_memory_utilization": -0.5}, LIMITS), ({"tensor_parallel_size": 0}, LIMITS),
    ({"max_requests_per_server": 0}, SERVERS), ({"max_tokens_per_server": -1}, SERVERS)])
def test_limits_out_of_range_are_refused_with_the_rule(fields, message):
    for kind in (QwenLlmConfig, QwenOmniConfig):
        with pytest.raises(ValueError) as err:
            kind(model="m", **fields)
        assert str(err.value) == message


def test_the_openai_backend_needs_servers_listed_or_named_by_a_variable():
    with pytest.raises(ValueError) as err:
        QwenLlmConfig(model="m", backend="openai")
    assert str(err.value) == "backend 'openai' needs base_urls (e.g. [\"http://localhost:8000/v1\"]) or base_urls_env"
    assert QwenLlmConfig(model="m", backend="openai", base_urls=["http://a/v1"]).base_urls == ["http://a/v1"]
    assert QwenLlmConfig(model="m", backend="openai", base_urls_env="X").base_urls_env == "X"
    assert QwenLlmConfig(model="m").backend == "transformers"  # other backends need no servers


def test_server_urls_come_from_the_variable_when_it_is_set(monkeypatch):
    config = QwenLlmConfig(model="m", backend="openai", base_urls=["http://listed/v1"], base_urls_env="AFCOT_URLS")
    monkeypatch.delenv("AFCOT_URLS", raising=False)
    assert config.server_urls() == ["http://listed/v1"]
    monkeypatch.setenv("AFCOT_URLS", " http://a:8000/v1/ ,http://b:8001/v1,, ")
    assert config.server_urls() == ["http://a:8000/v1", "http://b:8001/v1"]
    monkeypatch.setenv("AFCOT_URLS", " , ")
    assert config.server_urls() == ["http://listed/v1"]  # a variable holding no URL leaves the listed ones


def test_keys_the_teacher_sets_itself_are_refused_in_engine_args_and_extra_body_all_named():
    with pytest.raises(ValueError) as err:
        QwenLlmConfig(model="m", engine_args={"seed": 1, "dtype": "float16", "max_model_len": 64})
    assert str(err.value) == "engine_args may not set dtype, seed: the teacher's own keys set them"
    with pytest.raises(ValueError) as err:
        QwenLlmConfig(model="m", extra_body={"temperature": 1.0, "repetition_penalty": 1.1})
    assert str(err.value) == "extra_body may not set temperature: the teacher's own keys set them"
    with pytest.raises(ValueError) as err:
        QwenLlmConfig(model="m", engine_run_args={"model": "other"})
    assert str(err.value) == "engine_args may not set model: the teacher's own keys set them"


def test_run_only_fields_move_out_of_the_reply_changing_tables():
    config = QwenLlmConfig(model="m", extra_body={"priority": 3, "repetition_penalty": 1.1},
                           engine_args={"max_num_seqs": 4, "kv_cache_dtype": "fp8"},
                           engine_run_args={"enforce_eager": True})
    assert config.extra_body == {"repetition_penalty": 1.1} and config.extra_run_body == {"priority": 3}
    assert config.engine_args == {"kv_cache_dtype": "fp8"}
    assert config.engine_run_args == {"enforce_eager": True, "max_num_seqs": 4}


def test_preflight_of_an_openai_teacher_asks_for_its_key_only_when_one_is_named(monkeypatch):
    monkeypatch.delenv("AFCOT_KEY", raising=False)
    keyed = QwenLlmConfig(model="m", backend="openai", base_urls=["http://a/v1"], api_key_env="AFCOT_KEY")
    assert [m for m in preflight(keyed) if "key" in m] == ["the API key: set the environment variable AFCOT_KEY"]
    monkeypatch.setenv("AFCOT_KEY", "secret")
    assert not [m for m in preflight(keyed) if "key" in m]
    assert not [m for m in preflight(QwenLlmConfig(model="m", backend="openai", base_urls=["http://a/v1"]))
                if "key" in m or "server" in m]
