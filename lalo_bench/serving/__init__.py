"""Servers lalo-bench starts, health-checks and stops: llama.cpp's server and vLLM (in its own venv).

:func:`lalo_bench.serving.launch.launch_server` is the entry point; clients
reach a started server through :class:`~lalo_bench.backends.openai_http.OpenAIHttpBackend`.
"""
