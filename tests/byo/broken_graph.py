"""A graph module that cannot be imported: its set-up raises, as a missing API key would."""

raise RuntimeError("OPENAI_API_KEY is not set")
