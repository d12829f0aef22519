"""Inference: one engine (continuous batching on transformers, or vllm) behind chat, webchat, the
OpenAI-compatible API and evaluation. Start at ``engine.build_engine``."""
