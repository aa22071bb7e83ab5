#!/usr/bin/python3
"""tmctl: a small command-line client of trialmatch's gRPC API.

Debian 12 has no grpcurl; this uses Debian's python3-grpcio (run it with
/usr/bin/python3) and generates the Python stubs from proto/ at start-up
(protoc + /usr/bin/grpc_python_plugin, into a temporary directory).

    tools/tmctl.py --target 127.0.0.1:50051 get NCT04280705
    tools/tmctl.py search --cond "lung cancer" --status RECRUITING --page-size 5
    tools/tmctl.py search --cond asthma --page-token <next_page_token>
    tools/tmctl.py list --cond melanoma --limit 20
    tools/tmctl.py version | metadata | search-areas | enums | stats-size
    tools/tmctl.py criteria NCT04280705   # GetStudyCriteria (stored studies)
    tools/tmctl.py get NCT04280705 --criteria   # GetStudy + include_criteria
    tools/tmctl.py health [SERVICE]       # grpc.health.v1 Check
    tools/tmctl.py services               # server reflection: list services

Output is the response as JSON (protobuf's JSON mapping); --brief prints the
typed study fields without record_json. Errors print "CODE: message" and exit
with status 1.

As a library (the end-to-end tests use it):

    import tmctl
    stubs = tmctl.load_stubs()        # generated modules, cached per process
    channel = grpc.insecure_channel(target)
    client = stubs.study_service_pb2_grpc.StudyServiceStub(channel)
"""

import argparse
import atexit
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import types

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROTO_ROOT = os.path.join(REPO, "proto")
EXTRA_ROOT = os.path.join(HERE, "protos")
PROTOC = shutil.which("protoc") or "/usr/bin/protoc"
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"
SYSTEM_INCLUDE = "/usr/include"  # google/protobuf/*.proto (libprotobuf-dev)

STUDY_SERVICE = "trialmatch.v1.StudyService"

_stubs = None


def load_stubs(out_dir=None):
    """Generates and imports the Python modules of trialmatch's protos and of
    the standard health and reflection protos. Returns a namespace with
    <name>_pb2 for every proto in proto/trialmatch/v1 (and <name>_pb2_grpc for
    the *_service protos: study_service_pb2_grpc, ...), health_pb2,
    health_pb2_grpc, reflection_pb2, reflection_pb2_grpc."""
    global _stubs
    if _stubs is not None:
        return _stubs
    if out_dir is None:
        out_dir = tempfile.mkdtemp(prefix="tmctl-stubs-")
        atexit.register(shutil.rmtree, out_dir, True)
    # Every trialmatch proto: the services import one another's messages.
    protos = sorted(
        os.path.join("trialmatch", "v1", f)
        for f in os.listdir(os.path.join(PROTO_ROOT, "trialmatch", "v1"))
        if f.endswith(".proto"))
    extra = [os.path.join("tmext", "health.proto"),
             os.path.join("tmext", "reflection.proto")]
    cmd = [PROTOC, f"-I{PROTO_ROOT}", f"-I{EXTRA_ROOT}", f"-I{SYSTEM_INCLUDE}",
           f"--python_out={out_dir}", f"--grpc_out={out_dir}",
           f"--plugin=protoc-gen-grpc={GRPC_PLUGIN}"] + protos + extra
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed: {done.stderr.strip()}")
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    ns = types.SimpleNamespace()
    for proto in protos:
        base = os.path.splitext(os.path.basename(proto))[0]
        names = [f"{base}_pb2"]
        if base.endswith("_service"):
            names.append(f"{base}_pb2_grpc")
        for name in names:
            setattr(ns, name, importlib.import_module(f"trialmatch.v1.{name}"))
    for name in ("health_pb2", "health_pb2_grpc", "reflection_pb2",
                 "reflection_pb2_grpc"):
        setattr(ns, name, importlib.import_module(f"tmext.{name}"))
    _stubs = ns
    return ns


def list_services(channel, timeout=10):
    """Service names the server reports through reflection."""
    s = load_stubs()
    stub = s.reflection_pb2_grpc.ServerReflectionStub(channel)
    request = s.reflection_pb2.ServerReflectionRequest(list_services="*")
    names = []
    for response in stub.ServerReflectionInfo(iter([request]), timeout=timeout):
        if response.HasField("error_response"):
            raise RuntimeError(response.error_response.error_message)
        names += [svc.name for svc in response.list_services_response.service]
    return names


def health(channel, service="", timeout=10):
    """grpc.health.v1 Check: 'SERVING', 'NOT_SERVING', ..."""
    s = load_stubs()
    stub = s.health_pb2_grpc.HealthStub(channel)
    response = stub.Check(s.health_pb2.HealthCheckRequest(service=service),
                          timeout=timeout)
    return s.health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _to_json(message, brief):
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    if brief:
        def strip(node):
            if isinstance(node, dict):
                node.pop("record_json", None)
                node.pop("json", None)
                for v in node.values():
                    strip(v)
            elif isinstance(node, list):
                for v in node:
                    strip(v)
        strip(data)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _fill_query(pb, args):
    for field in ("cond", "term", "intr", "locn", "titles", "outc", "spons",
                  "lead", "id", "patient"):
        value = getattr(args, field, None)
        if value:
            setattr(pb.query, field, value)
    if args.status:
        pb.filter.overall_status.extend(args.status.split(","))
    if args.fields:
        pb.fields.extend(args.fields.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="deadline of each call, seconds")
    parser.add_argument("--brief", action="store_true",
                        help="omit record_json / json")
    sub = parser.add_subparsers(dest="command", required=True)

    get = sub.add_parser("get", help="GetStudy")
    get.add_argument("nct_id")
    get.add_argument("--max-age", type=int, default=None,
                     help="max cache age, seconds (0 = force upstream)")
    get.add_argument("--csv", action="store_true")
    get.add_argument("--fields", default="")
    get.add_argument("--criteria", action="store_true",
                     help="include the compiled eligibility criteria")

    def query_args(p):
        for field in ("cond", "term", "intr", "locn", "titles", "outc",
                      "spons", "lead", "id", "patient"):
            p.add_argument(f"--{field}", default="")
        p.add_argument("--status", default="",
                       help="overall statuses, comma-separated")
        p.add_argument("--fields", default="")

    search = sub.add_parser("search", help="SearchStudies (one page)")
    query_args(search)
    search.add_argument("--page-size", type=int, default=0)
    search.add_argument("--page-token", default="")
    search.add_argument("--count-total", action="store_true")
    search.add_argument("--csv", action="store_true")
    search.add_argument("--sort", default="")

    lst = sub.add_parser("list", help="ListAllStudies (streamed)")
    query_args(lst)
    lst.add_argument("--limit", type=int, default=0)
    lst.add_argument("--page-size", type=int, default=0)

    crit = sub.add_parser("criteria", help="GetStudyCriteria")
    crit.add_argument("nct_id")

    for name in ("version", "metadata", "search-areas", "enums",
                 "stats-size", "services"):
        sub.add_parser(name)
    h = sub.add_parser("health", help="grpc.health.v1 Check")
    h.add_argument("service", nargs="?", default="")

    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends quietly
    s = load_stubs()
    pb = s.study_service_pb2
    channel = grpc.insecure_channel(args.target)
    client = s.study_service_pb2_grpc.StudyServiceStub(channel)
    t = args.timeout
    try:
        if args.command == "get":
            req = pb.GetStudyRequest(nct_id=args.nct_id)
            if args.max_age is not None:
                req.max_cache_age_seconds = args.max_age
            if args.csv:
                req.format = s.study_pb2.FORMAT_CSV
            if args.fields:
                req.fields.extend(args.fields.split(","))
            req.include_criteria = args.criteria
            print(_to_json(client.GetStudy(req, timeout=t), args.brief))
        elif args.command == "criteria":
            req = pb.GetStudyCriteriaRequest(nct_id=args.nct_id)
            print(_to_json(client.GetStudyCriteria(req, timeout=t),
                           args.brief))
        elif args.command == "search":
            req = pb.SearchStudiesRequest(page_size=args.page_size,
                                          page_token=args.page_token,
                                          count_total=args.count_total)
            _fill_query(req, args)
            if args.csv:
                req.format = s.study_pb2.FORMAT_CSV
            if args.sort:
                req.sort.extend(args.sort.split(","))
            print(_to_json(client.SearchStudies(req, timeout=t), args.brief))
        elif args.command == "list":
            req = pb.ListAllStudiesRequest(limit=args.limit,
                                           page_size=args.page_size)
            _fill_query(req, args)
            for message in client.ListAllStudies(req, timeout=t):
                print(_to_json(message, args.brief))
        elif args.command == "version":
            print(_to_json(client.GetApiVersion(pb.GetApiVersionRequest(),
                                                timeout=t), args.brief))
        elif args.command == "metadata":
            print(_to_json(client.GetStudiesMetadata(
                pb.GetStudiesMetadataRequest(), timeout=t), args.brief))
        elif args.command == "search-areas":
            print(_to_json(client.GetSearchAreas(pb.GetSearchAreasRequest(),
                                                 timeout=t), args.brief))
        elif args.command == "enums":
            print(_to_json(client.GetEnums(pb.GetEnumsRequest(), timeout=t),
                           args.brief))
        elif args.command == "stats-size":
            print(_to_json(client.GetStatsSize(pb.GetStatsSizeRequest(),
                                               timeout=t), args.brief))
        elif args.command == "health":
            print(health(channel, args.service, timeout=t))
        elif args.command == "services":
            print("\n".join(list_services(channel, timeout=t)))
    except grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
