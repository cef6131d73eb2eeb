"""A tiny Hugging Face sequence classifier that a test builds and saves itself (no download).

The models tests load it through the project's own loading code (`HFSentimentScorer`,
the ONNX export), as a real checkpoint would be loaded.
"""

from __future__ import annotations

import pathlib

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

WORDS = ["good", "great", "bad", "awful", "movie", "service", "the", "is", "was", "ok", "not", "very"]


def save_tiny_hf_model(
    directory: pathlib.Path, labels: list[str], bias: list[float] | None = None, seed: int = 0
) -> pathlib.Path:
    """Builds and saves a tiny BERT sequence classifier with a WordPiece tokenizer.

    With ``bias`` the classifier ignores the text (zero weights), so its probabilities
    are ``softmax(bias)`` exactly; without it the outputs depend on the text.
    """
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    backend = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        if bias is not None:
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
        else:
            # BERT's default init gives near-uniform outputs; spread them so texts differ.
            model.classifier.weight.normal_(0.0, 5.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
