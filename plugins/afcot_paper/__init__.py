"""The paper's CoT generation algorithms (6 and 8) and its validators, as a built-in plugin."""
