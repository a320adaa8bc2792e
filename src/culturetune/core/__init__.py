"""Shared ground: errors, file writing, input checks, defaults, statistics."""
