"""The `telugu-s2s` command."""
