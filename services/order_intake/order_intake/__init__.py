"""Order intake: receives channel orders, stores them, normalises, validates, dedupes, publishes."""
