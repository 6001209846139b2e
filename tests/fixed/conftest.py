import pytest


@pytest.fixture(scope="session")
def minilm_model():
    from hwsim.models import minilm

    config, weights = minilm.load_weights()
    return config, weights, minilm.Tokenizer()
