"""mtg_llm."""
