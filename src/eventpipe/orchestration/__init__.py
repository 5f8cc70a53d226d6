"""Adapters for orchestrators: each pipeline stage as a call that takes plain parameters and
returns a plain, JSON-ready summary. Nothing here imports an orchestrator."""
