"""The local stack: every service as a real process on this machine (`telugu-s2s up`)."""
