"""Teachers produce training labels: transparent rules, or an LLM behind an OpenAI-compatible endpoint."""
