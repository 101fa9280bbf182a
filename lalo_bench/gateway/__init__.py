"""``lalo-bench serve``: an OpenAI-compatible gateway that routes each request to a local model by the policy."""
