"""Learning a soft prompt: settings, search, memory limits and the run folder."""
