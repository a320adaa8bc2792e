"""Loading a causal LM (hub id, folder, GGUF, LoRA adapter) and scoring prompts on it."""
