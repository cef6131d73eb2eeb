"""The model soup (models/soup.py): heads folded into raw space, members read, averaged and stored low-rank."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from models.finetune import export_low_rank
from models.head import EmbeddingHead, save_head
from models.soup import _head, average, load_member, raw_affine, soup_layers
from models.train_head import LAYERS_FILE, compress_layers


def _standardised_head(seed: int, dim: int = 32) -> EmbeddingHead:
    torch.manual_seed(seed)
    head = EmbeddingHead(dim, 3)
    head.set_standardization(torch.randn(dim) * 0.1, torch.rand(dim) + 0.5)
    with torch.no_grad():
        head.out.weight.normal_()
        head.out.bias.normal_()
    return head.eval()


def test_raw_affine_gives_the_heads_logits():
    head = _standardised_head(0)
    weight, bias = raw_affine(head)
    x = torch.randn(5, 32)
    with torch.no_grad():
        torch.testing.assert_close(x @ weight.T + bias, head(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(_head(weight, bias)(x), head(x), atol=1e-5, rtol=1e-5)


def test_raw_affine_refuses_a_hidden_layer():
    with pytest.raises(ValueError, match="linear"):
        raw_affine(EmbeddingHead(8, 3, hidden_dim=4))


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(3)
    base = BertModel(config, add_pooling_layer=False).eval()
    base.save_pretrained(tmp_path / "checkpoint")
    return tmp_path / "checkpoint", base


def _write_member(directory, base, seed, tau):
    """A member as models.train_head writes one: layer 1 fine-tuned (stored at full rank), a head, a JSON."""
    torch.manual_seed(seed)
    tuned = copy.deepcopy(base.encoder.layer[1])
    with torch.no_grad():
        for param in tuned.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    directory.mkdir()
    save_file(export_low_rank({1: tuned}, {1: base.encoder.layer[1]}, rank=32), str(directory / LAYERS_FILE))
    head_path = directory / "head.safetensors"
    save_head(_standardised_head(seed), head_path, {
        "labels": ["negative", "neutral", "positive"],
        "encoder": {"fine_tuned": {"file": LAYERS_FILE, "layers": [1], "rank": 32}},
        "calibration": {"prior_correction_tau": tau}})
    return head_path, tuned


def test_members_are_read_averaged_and_stored(tiny_checkpoint, tmp_path):
    checkpoint, base = tiny_checkpoint
    log_prior = np.log(np.array([0.5, 0.3, 0.2]))
    (path_a, tuned_a), (path_b, tuned_b) = (_write_member(tmp_path / "a", base, 11, 0.0),
                                            _write_member(tmp_path / "b", base, 12, 0.5))
    a, b = load_member(path_a, checkpoint, log_prior), load_member(path_b, checkpoint, log_prior)
    # The member's layer as it was fine-tuned (fp16 storage: close, not equal).
    prefix = "encoder.layer.1."
    for name, value in tuned_b.state_dict().items():
        torch.testing.assert_close(b.parameters[prefix + name], value, atol=2e-3, rtol=2e-3)
    # Its prior correction (bias -= tau * log prior) is undone: the stored bias plus 0.5 * log prior.
    _, stored_bias = raw_affine(_standardised_head(12))
    torch.testing.assert_close(b.bias, stored_bias + torch.tensor(0.5 * log_prior, dtype=torch.float32))
    assert a.tau == 0.0 and b.tau == 0.5 and len(a.layers_sha1) == 8

    parameters, weight, bias = average([a, b])
    for name in parameters:
        torch.testing.assert_close(parameters[name], (a.parameters[name] + b.parameters[name]) / 2)
    torch.testing.assert_close(weight, (a.weight + b.weight) / 2)
    torch.testing.assert_close(bias, (a.bias + b.bias) / 2)

    # The soup's layer runs the averaged weights; stored at full rank it is the same layer again.
    layers = soup_layers(checkpoint, parameters)
    assert list(layers) == [1]
    x = torch.randn(2, 5, 32)
    want = copy.deepcopy(base.encoder.layer[1])
    want.load_state_dict({k[len(prefix):]: v for k, v in parameters.items()})
    with torch.inference_mode():
        expected = want.eval()(x)
        expected = expected[0] if isinstance(expected, tuple) else expected
        got = layers[1].eval()(x)
        got = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(got, expected)
    tensors = compress_layers(layers, checkpoint, rank=32)
    assert any(name.endswith("lora_A") for name in tensors)
    with torch.inference_mode():
        stored = layers[1](x)
        stored = stored[0] if isinstance(stored, tuple) else stored
    # fp16 storage again: close, not equal.
    torch.testing.assert_close(stored, expected, atol=5e-3, rtol=5e-3)


def test_members_must_tune_the_same_parameters(tiny_checkpoint, tmp_path):
    checkpoint, base = tiny_checkpoint
    log_prior = np.log(np.array([0.5, 0.3, 0.2]))
    a = load_member(_write_member(tmp_path / "a", base, 1, 0.0)[0], checkpoint, log_prior)
    b = load_member(_write_member(tmp_path / "b", base, 2, 0.0)[0], checkpoint, log_prior)
    b.parameters.pop(sorted(b.parameters)[0])
    with pytest.raises(ValueError, match="other parameters"):
        average([a, b])
    with pytest.raises(ValueError, match="needs members"):
        average([])


def test_the_command_refuses_what_cannot_make_a_soup(tiny_checkpoint, tmp_path, capsys):
    from models.soup import main

    _, base = tiny_checkpoint
    member = _write_member(tmp_path / "a", base, 1, 0.0)[0]
    with pytest.raises(SystemExit) as one:
        main([str(member), "--out", str(tmp_path / "out" / "head.safetensors")])
    assert one.value.code == 2 and "at least two members" in capsys.readouterr().err
    with pytest.raises(SystemExit) as absent:
        main([str(member), str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "out" / "head.safetensors")])
    assert absent.value.code == 2 and "nope.safetensors" in capsys.readouterr().err
    stray = tmp_path / "stray.safetensors"
    stray.write_bytes(b"not a head")
    with pytest.raises(SystemExit) as not_a_head:
        main([str(member), str(stray), "--out", str(tmp_path / "out" / "head.safetensors")])
    assert not_a_head.value.code == 2 and "is not a head" in capsys.readouterr().err
    other = _write_member(tmp_path / "b", base, 2, 0.0)[0]
    meta = other.with_suffix(".json")
    import json

    data = json.loads(meta.read_text())
    data["encoder"]["fine_tuned"]["layers"] = [0, 1]
    meta.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as layers:
        main([str(member), str(other), "--out", str(tmp_path / "out" / "head.safetensors")])
    assert layers.value.code == 2 and "same number of layers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
