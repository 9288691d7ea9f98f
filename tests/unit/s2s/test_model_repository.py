from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from telugu_s2s.s2s import protocol as P

REPO = Path(__file__).resolve().parents[3] / "services" / "s2s" / "model_repository" / P.MODEL_NAME


def load_config() -> model_config_pb2.ModelConfig:
    return text_format.Parse((REPO / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_config_matches_the_protocol():
    cfg = load_config()
    assert cfg.name == P.MODEL_NAME and cfg.backend == "python"
    assert cfg.max_batch_size == 0 and cfg.model_transaction_policy.decoupled
    inputs = {i.name: i for i in cfg.input}
    assert set(inputs) == {
        P.USER_CODES, P.VOICE_ID, P.CONTEXT_CODES, P.CONTEXT_SEGMENTS, P.MAX_FRAMES, P.TEMPERATURE,
        P.TOP_K, P.SEED, P.FRAMES_PER_RESPONSE, P.MAX_FRAMES_PER_RESPONSE,
    }
    assert set(inputs) == set(P.INPUTS)  # what the model reads from a request
    required = {name for name, i in inputs.items() if not i.optional}
    assert required == {P.USER_CODES, P.VOICE_ID}
    assert model_config_pb2.DataType.Name(inputs[P.SEED].data_type) == "TYPE_INT64"
    assert model_config_pb2.DataType.Name(inputs[P.TEMPERATURE].data_type) == "TYPE_FP32"
    assert {o.name for o in cfg.output} == {P.OUT_CODES, P.OUT_FRAME_OFFSET, P.OUT_STATUS, P.OUT_MESSAGE}
    params = dict(cfg.parameters)
    assert {"checkpoint_dir", "allow_random_weights", "device"} <= set(params)
    assert params["allow_random_weights"].string_value == "0"
    assert (REPO / "1" / "model.py").is_file()


def test_a_failure_response_is_read_by_its_status_code():
    import numpy as np

    from telugu_s2s.s2s.client import S2SBadRequest, S2SUnavailable, _failure

    message = np.array(["bad s2s request: voice index 9".encode()], dtype=np.object_)
    bad = _failure(int(P.Status.INVALID_ARGUMENT), message)
    assert isinstance(bad, S2SBadRequest) and str(bad) == "bad s2s request: voice index 9"
    # The same words with another code are not a bad request: the code decides, not the text.
    busy = _failure(int(P.Status.UNAVAILABLE), message)
    assert type(busy) is S2SUnavailable and "UNAVAILABLE" in str(busy)
    assert type(_failure(99, None)) is S2SUnavailable
