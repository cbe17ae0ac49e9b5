#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An independent client of zmesh-ca (istio.v1.auth.IstioCertificateService/CreateCertificate).

Nothing here shares code with zmesh: messages come from a protobuf descriptor built at run
time (python3-protobuf), the call goes through python3-grpcio, CSRs come from the openssl
command line. Used by tests/integration/ca-service.sh.

  get  --addr A --roots R --cert C --key K (--id SPIFFE | --csr FILE) [--impersonate ID]
       [--validity S] [--out FILE] [--csr-kind ec|rsa1024|twosans|dns|nospiffe]
       prints "OK <n> <leaf subject/SAN>" (exit 0) or "ERROR <CODE> <message>" (exit 1)
  raw  --addr A --roots R --cert C --key K --mode M   (M: compressed, truncated, twomsgs,
       badproto, hugelen, garbage-h2) sends hand-made bytes over HTTP/2 (python3-h2) and
       prints "STATUS <grpc-status> <message>" or "CLOSED <why>"
"""
import argparse
import os
import socket
import ssl
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate"
CODES = {0: "OK", 3: "INVALID_ARGUMENT", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
         12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}


def messages():
    """Request/response classes from a descriptor equal to istio/api security/v1alpha1/ca.proto."""
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="zm_test_ca.proto", package="istio.v1.auth",
                                             syntax="proto3",
                                             dependency=["google/protobuf/struct.proto"])
    req = fdp.message_type.add(name="IstioCertificateRequest")
    req.field.add(name="csr", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    req.field.add(name="validity_duration", number=3, type=f.TYPE_INT64, label=f.LABEL_OPTIONAL)
    req.field.add(name="metadata", number=4, type=f.TYPE_MESSAGE, label=f.LABEL_OPTIONAL,
                  type_name=".google.protobuf.Struct")
    resp = fdp.message_type.add(name="IstioCertificateResponse")
    resp.field.add(name="cert_chain", number=1, type=f.TYPE_STRING, label=f.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    fac = message_factory.MessageFactory(pool)
    return (fac.GetPrototype(pool.FindMessageTypeByName("istio.v1.auth.IstioCertificateRequest")),
            fac.GetPrototype(pool.FindMessageTypeByName("istio.v1.auth.IstioCertificateResponse")))


def make_csr(spiffe_id, kind):
    """A PEM CSR from the openssl CLI; kind picks well-formed or deliberately bad shapes."""
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "k.pem")
        if kind == "rsa1024":
            newkey = ["-newkey", "rsa:1024"]
        else:
            newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        san = {"ec": "URI:" + spiffe_id, "rsa1024": "URI:" + spiffe_id,
               "twosans": "URI:%s,URI:%s-other" % (spiffe_id, spiffe_id),
               "dns": "DNS:example.com", "nospiffe": "URI:https://example.com/x"}[kind]
        out = subprocess.run(["openssl", "req", "-new", "-nodes", "-keyout", key] + newkey +
                             ["-subj", "/", "-addext", "subjectAltName=critical," + san],
                             check=True, capture_output=True, text=True)
        return out.stdout


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cmd_get(a):
    import grpc

    Req, Resp = messages()
    csr = read(a.csr).decode(errors="replace") if a.csr else make_csr(a.id, a.csr_kind)
    req = Req(csr=csr, validity_duration=a.validity)
    if a.impersonate:
        req.metadata.fields["ImpersonatedIdentity"].string_value = a.impersonate
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(a.roots),
        private_key=read(a.key) if a.key else None,
        certificate_chain=read(a.cert) if a.cert else None)
    opts = [("grpc.ssl_target_name_override", a.server_name)] if a.server_name else []
    with grpc.secure_channel(a.addr, creds, options=opts) as ch:
        call = ch.unary_unary(PATH, request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=Resp.FromString)
        try:
            md = [("authorization", "Bearer " + a.token)] if a.token else None
            resp = call(req, timeout=a.timeout, metadata=md)
        except grpc.RpcError as e:
            print("ERROR %s %s" % (e.code().name, e.details()))
            return 1
    chain = list(resp.cert_chain)
    if a.out:
        with open(a.out, "w") as f:
            f.write("".join(chain))
    leaf = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"],
                          input=chain[0], capture_output=True, text=True).stdout
    print("OK %d %s" % (len(chain), " ".join(leaf.split()[1:])))
    return 0


def raw_body(mode, Req, csr):
    msg = Req(csr=csr).SerializeToString()
    hdr = lambda n, flag=0: bytes([flag]) + n.to_bytes(4, "big")
    if mode == "compressed":
        return hdr(len(msg), 1) + msg
    if mode == "truncated":
        return hdr(len(msg) + 100) + msg
    if mode == "twomsgs":
        return hdr(len(msg)) + msg + hdr(len(msg)) + msg
    if mode == "badproto":
        junk = b"\x0a\xff\xff\xff\xff\x0f" + b"\x00" * 10  # csr claims 4 GiB
        return hdr(len(junk)) + junk
    if mode == "hugelen":
        return hdr(0x7fffffff) + b"\x00" * 64
    raise SystemExit("unknown mode " + mode)


def cmd_raw(a):
    import h2.config
    import h2.connection
    import h2.events

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.roots)
    ctx.check_hostname = False
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    host, port = a.addr.rsplit(":", 1)
    sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=a.timeout))
    if a.mode == "garbage-h2":
        sock.sendall(b"this is not an HTTP/2 connection preface\r\n\r\n" * 4)
        try:
            data = sock.recv(65536)
            while data:
                data = sock.recv(65536)
        except (ConnectionError, ssl.SSLError, socket.timeout) as e:
            print("CLOSED %s" % type(e).__name__)
            return 0
        print("CLOSED eof")
        return 0
    Req, _ = messages()
    body = raw_body(a.mode, Req, make_csr(a.id or "spiffe://cluster.local/ns/x/sa/y", "ec"))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":path", PATH),
                            (":authority", a.addr), ("content-type", "application/grpc"),
                            ("te", "trailers")])
    conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, message = None, ""
    while status is None:
        try:
            data = sock.recv(65536)
        except (ConnectionError, ssl.SSLError, socket.timeout) as e:
            print("CLOSED %s" % type(e).__name__)
            return 1
        if not data:
            print("CLOSED eof")
            return 1
        for ev in conn.receive_data(data):
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                hd = {k.decode() if isinstance(k, bytes) else k:
                      v.decode() if isinstance(v, bytes) else v for k, v in ev.headers}
                if "grpc-status" in hd:
                    status, message = int(hd["grpc-status"]), hd.get("grpc-message", "")
            elif isinstance(ev, h2.events.StreamReset) and status is None:
                print("CLOSED reset")
                return 1
        sock.sendall(conn.data_to_send())
    print("STATUS %s %s" % (CODES.get(status, status), message))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["get", "raw"])
    p.add_argument("--addr", required=True)
    p.add_argument("--roots", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--id")
    p.add_argument("--csr")
    p.add_argument("--csr-kind", default="ec",
                   choices=["ec", "rsa1024", "twosans", "dns", "nospiffe"])
    p.add_argument("--impersonate")
    p.add_argument("--token", help="send authorization: Bearer TOKEN (istiod's form)")
    p.add_argument("--validity", type=int, default=0)
    p.add_argument("--server-name", default="istiod.istio-system.svc")
    p.add_argument("--out")
    p.add_argument("--mode")
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args()
    return cmd_get(a) if a.command == "get" else cmd_raw(a)


if __name__ == "__main__":
    sys.exit(main())
