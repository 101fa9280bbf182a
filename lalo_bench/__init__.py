"""lalo-bench: size an on-premise LLM install with measured evidence."""

__version__ = "0.1.0"
