"""signoff: a Slack approval gateway for LangGraph agents."""

__all__ = ["__version__"]

__version__ = "0.1.0"
