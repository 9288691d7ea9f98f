"""Security helpers shared by the services: TLS credentials, request ids and log redaction."""
