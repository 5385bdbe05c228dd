"""A minimal OTLP/HTTP trace receiver for the end-to-end tests.

Usage: otlp_receiver.py OUT_FILE
Listens on 127.0.0.1 (a free port), prints `otlp-receiver listening on http://ADDR`, decodes
every `POST /v1/traces` body as an `ExportTraceServiceRequest` with the official protobuf
definitions (the `opentelemetry-proto` package), and appends each span to OUT_FILE as one JSON
line. Exits when its standard input closes.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

OUT = sys.argv[1]
LOCK = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def span_json(resource, scope, s):
    return {
        "resource": attrs(resource.attributes),
        "scope": scope.name,
        "trace_id": s.trace_id.hex(),
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "trace_state": s.trace_state,
        "flags": s.flags,
        "name": s.name,
        "kind": trace_pb2.Span.SpanKind.Name(s.kind),
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
        "attributes": attrs(s.attributes),
        "events": [
            {"name": e.name, "time": e.time_unix_nano, "attributes": attrs(e.attributes)}
            for e in s.events
        ],
        "status": {
            "code": trace_pb2.Status.StatusCode.Name(s.status.code),
            "message": s.status.message,
        },
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/v1/traces":
            self.reply(404, b"")
            return
        if self.headers.get("content-type") != "application/x-protobuf":
            self.reply(415, b"")
            return
        req = trace_service_pb2.ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except Exception:  # noqa: BLE001 - a malformed body is the gateway's bug: answer 400
            self.reply(400, b"")
            return
        lines = []
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    lines.append(json.dumps(span_json(rs.resource, ss.scope, s)))
        with LOCK, open(OUT, "a", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        resp = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.reply(200, resp)

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
host, port = server.server_address[:2]
print(f"otlp-receiver listening on http://{host}:{port}", flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
