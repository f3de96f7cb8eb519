"""Tests of assistant/: the answering steps, answers with the real models, the LLMs, settings, the llama-index seams, the evaluation."""
