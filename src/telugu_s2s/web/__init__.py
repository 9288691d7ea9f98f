"""Browser demo: serves a page on port 8000 and bridges each WebSocket to the gateway's Converse."""
