"""Server reflection answers under v1 (what grpcurl asks first) and v1alpha on the real gateway."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as rpb

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_and_describes_the_conversation_service(stack, version):
    with grpc.insecure_channel(stack.cfg.gateway_target) as ch:
        info = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                                response_deserializer=rpb.ServerReflectionResponse.FromString)
        listed, described = info(iter([
            rpb.ServerReflectionRequest(list_services=""),
            rpb.ServerReflectionRequest(file_containing_symbol="telugu_s2s.v1.Conversation"),
        ]), timeout=10)
    names = {s.name for s in listed.list_services_response.service}
    assert {"telugu_s2s.v1.Conversation", "grpc.health.v1.Health"} <= names
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in described.file_descriptor_response.file_descriptor_proto]
    services = {s.name: [m.name for m in s.method] for f in files for s in f.service}
    assert "Converse" in services["Conversation"]
