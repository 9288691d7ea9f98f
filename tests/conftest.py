"""Suite-wide fixtures: only generic ones (see tests/support/)."""

pytest_plugins = ["tests.support.redis"]
