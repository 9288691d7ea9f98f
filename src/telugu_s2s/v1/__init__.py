"""Generated protobuf/gRPC stubs for package telugu_s2s.v1 (do not edit; run `make protos`)."""
