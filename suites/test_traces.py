"""Traces through the front door: spans exported over OTLP/HTTP (protobuf, as any
OpenTelemetry SDK sends them) to ``/v1/traces``, and traces made with MLflow's own tracing
client, are searchable and readable with their spans; tags, assessments (``/api/3.0``) and
deletion work on them.

A front door that does not route ``/v1/traces`` or ``/api/3.0``, or that mangles a binary
body, leaves GenAI apps tracing into the void: their exporters log a warning and drop the
spans, so nothing fails where the user looks.
"""

from __future__ import annotations

import secrets
import time

import mlflow
import pytest
from mlflow_acceptance.fixtures.core import mlflow_api
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

pytestmark = pytest.mark.acceptance

ROOT, CHILD = "acceptance-root", "acceptance-child"


@pytest.fixture(autouse=True)
def _mlflow_3(deployment):
    deployment.require_server("3.0", "traces on /api/3.0 and /v1/traces")


def attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otlp_export(trace_id: bytes) -> bytes:
    """One finished trace, a root span and its child, as an OTLP/HTTP protobuf body."""
    now = time.time_ns()
    root_id = secrets.token_bytes(8)
    spans = [
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name=ROOT,
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 9_000_000,
            attributes=[attribute("acc.step", "root")],
            status=Status(code=Status.STATUS_CODE_OK),
        ),
        Span(
            trace_id=trace_id,
            span_id=secrets.token_bytes(8),
            parent_span_id=root_id,
            name=CHILD,
            start_time_unix_nano=now + 1_000_000,
            end_time_unix_nano=now + 8_000_000,
            status=Status(code=Status.STATUS_CODE_OK),
        ),
    ]
    resource = Resource(attributes=[attribute("service.name", "mlflow-acceptance")])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def searched(client, experiment_id: str, **kwargs) -> set[str]:
    traces = client.search_traces(locations=[experiment_id], max_results=100, **kwargs)
    return {trace.info.trace_id for trace in traces}


def span_names(trace) -> dict[str, object]:
    return {span.name: span for span in trace.data.spans}


def test_spans_exported_over_otlp_are_searched_read_tagged_assessed_and_deleted(
    deployment, client, new_experiment
):
    experiment_id = new_experiment("otlp")
    otel_trace_id = secrets.token_bytes(16)
    response = deployment.http.post(
        mlflow_api.OTLP_TRACES,
        data=otlp_export(otel_trace_id),
        headers={
            "Content-Type": "application/x-protobuf",
            "x-mlflow-experiment-id": experiment_id,
        },
        timeout=30,
    )
    assert response.status_code == 200, (
        f"an OTLP/HTTP export to {mlflow_api.OTLP_TRACES} answered HTTP {response.status_code} "
        f"{response.text[:200]!r}, expected 200: OpenTelemetry exporters drop their spans"
    )
    trace_id = f"tr-{otel_trace_id.hex()}"
    assert trace_id in searched(client, experiment_id), (
        f"the exported trace {trace_id} is not found in experiment {experiment_id}"
    )
    spans = span_names(client.get_trace(trace_id, display=False))
    assert set(spans) == {ROOT, CHILD}, f"spans read back: {sorted(spans)}"
    assert spans[CHILD].parent_id == spans[ROOT].span_id, "the child lost its parent"
    assert spans[ROOT].attributes.get("acc.step") == "root", spans[ROOT].attributes

    client.set_trace_tag(trace_id, "reviewed", "yes")
    client.set_trace_tag(trace_id, "scratch", "x")
    client.delete_trace_tag(trace_id, "scratch")
    assert searched(client, experiment_id, filter_string="tag.reviewed = 'yes'") == {trace_id}
    tags = client.get_trace(trace_id, display=False).info.tags
    assert tags.get("reviewed") == "yes", tags
    assert "scratch" not in tags, f"a deleted tag is still on the trace: {tags}"

    mlflow.log_feedback(trace_id=trace_id, name="acc-quality", value=True, rationale="suite")
    assessments = client.get_trace(trace_id, display=False).info.assessments
    assert [(a.name, a.value) for a in assessments] == [("acc-quality", True)], assessments

    assert client.delete_traces(experiment_id, trace_ids=[trace_id]) == 1
    assert trace_id not in searched(client, experiment_id), "a deleted trace is still searched"


def test_a_trace_from_mlflows_tracing_client_is_searched_and_read(
    client, new_experiment, monkeypatch
):
    experiment_id = new_experiment("tracing-client")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    with mlflow.start_span(name=ROOT) as root:
        root.set_inputs({"question": "does tracing reach the server?"})
        with mlflow.start_span(name=CHILD) as child:
            child.set_outputs({"answer": "yes"})
        root.set_outputs({"answer": "yes"})
    trace_id = root.trace_id
    found = searched(client, experiment_id, flush=True)
    assert trace_id in found, (
        f"trace {trace_id} made with mlflow.start_span is not in experiment {experiment_id} "
        f"(found {sorted(found)}): the tracing client could not export it through the front "
        "door (its warnings are in the log)"
    )
    spans = span_names(client.get_trace(trace_id, display=False))
    assert set(spans) == {ROOT, CHILD}, f"spans read back: {sorted(spans)}"
    assert spans[ROOT].inputs == {"question": "does tracing reach the server?"}
    assert spans[CHILD].outputs == {"answer": "yes"}
