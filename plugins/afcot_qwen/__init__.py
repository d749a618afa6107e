"""The paper's teachers: Qwen3 (text LLM) and Qwen2.5-Omni (audio LM), on local weights."""
