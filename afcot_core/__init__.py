"""afcot core: records, the CoT template, hook specs, registries, recipes and the runner.

The core imports no plugin and no heavy library (torch, transformers, vllm) at import time.
"""

__version__ = "0.1.0"

#: Version of the hook API. A change that breaks plugins bumps it (see docs/writing-a-plugin.md).
HOOK_API = 1
