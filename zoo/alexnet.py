"""Placeholder: being written in this session."""

__all__: list[str] = []
