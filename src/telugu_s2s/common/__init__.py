"""Small, dependency-light helpers shared by every service (no torch here)."""
