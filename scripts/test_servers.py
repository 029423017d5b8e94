#!/usr/bin/env python3
"""Helpers for scripts/services.sh: free ports, readiness, bucket/container creation.

Owns: everything the test-services script needs that is awkward in bash. Python stdlib only, so it
runs before any venv exists.

Must stay true:
- `wait` succeeds only when the HTTP check passes AND the listening socket on the port belongs to
  the process tree of the given PID (so a server of another, concurrent test run that happens to
  hold the same port is never mistaken for ours); it exits 3 when that process tree has died
  (the caller may retry on a fresh port) and 1 on deadline.
- Bucket/container creation is idempotent (an "already exists" answer counts as success).
- The Azure SharedKey signature follows the Blob service rules for version 2015-02-21 and later,
  with the path-style emulator resource `/ACCOUNT/ACCOUNT/CONTAINER`.

Usage:
  test_servers.py free-ports N
  test_servers.py wait --pid PID --port PORT --url URL [--status CODE] [--deadline SECONDS]
  test_servers.py s3-bucket ENDPOINT BUCKET
  test_servers.py azure-container BLOB_URL BUCKET
  test_servers.py gcs-bucket SERVER_URL BUCKET
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

AZURITE_ACCOUNT = "devstoreaccount1"
# The published, well-known key of the Azure storage emulator account (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_API_VERSION = "2021-08-06"
POLL_INTERVAL = 0.1


def free_ports(count):
    """Bind `count` sockets to port 0 at once (so the ports differ), then release them."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_request(url, method="GET", body=None, headers=None, timeout=5.0):
    """One request; returns (status, body bytes). Raises OSError on connection failure."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def process_tree(root_pid):
    """PIDs of root_pid and all its descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: parse after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = set(), [root_pid]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    return tree


def listening_inodes(port):
    """Socket inodes listening on 127.0.0.1/0.0.0.0/:: at `port` (IPv4 and IPv6 tables)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def tree_owns_port(root_pid, port):
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not wanted:
        return False
    for pid in process_tree(root_pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return True
            except OSError:
                continue
    return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def wait_ready(pid, port, url, status, deadline):
    """Poll until ready; 0 ready, 1 deadline passed, 3 process died."""
    end = time.monotonic() + deadline
    last = "no attempt yet"
    while time.monotonic() < end:
        if not alive(pid):
            print(f"process {pid} exited before {url} was ready ({last})", file=sys.stderr)
            return 3
        try:
            got, _ = http_request(url, timeout=2.0)
            if (status is None or got == status) and tree_owns_port(pid, port):
                return 0
            last = f"HTTP {got}"
        except OSError as err:
            last = str(err)
        time.sleep(POLL_INTERVAL)
    print(f"{url} not ready after {deadline}s (last: {last})", file=sys.stderr)
    return 1


def expect(what, status, body, ok):
    if status in ok:
        return 0
    print(f"{what}: HTTP {status}: {body[:500]!r}", file=sys.stderr)
    return 1


def s3_bucket(endpoint, bucket):
    status, body = http_request(f"{endpoint}/{bucket}", "PUT", body=b"")
    return expect(f"create S3 bucket {bucket}", status, body, (200, 409))


def azure_shared_key(method, account, path, query, headers, key):
    """SharedKey Authorization header value (Blob service, version >= 2015-02-21)."""
    std = [
        "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
        "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
        "If-Unmodified-Since", "Range",
    ]
    lines = [method]
    for name in std:
        value = headers.get(name, "")
        lines.append("" if name == "Content-Length" and value == "0" else value)
    ms = sorted((k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-ms-"))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in ms)
    resource = f"/{account}{path}"
    for k in sorted(query):
        resource += f"\n{k.lower()}:{query[k]}"
    to_sign = "\n".join(lines) + "\n" + canon_headers + resource
    mac = hmac.new(base64.b64decode(key), to_sign.encode("utf-8"), hashlib.sha256)
    return f"SharedKey {account}:{base64.b64encode(mac.digest()).decode()}"


def azure_container(blob_url, bucket):
    path = f"/{AZURITE_ACCOUNT}/{bucket}"
    headers = {
        "x-ms-date": email.utils.formatdate(usegmt=True),
        "x-ms-version": AZURE_API_VERSION,
        "Content-Length": "0",
    }
    headers["Authorization"] = azure_shared_key(
        "PUT", AZURITE_ACCOUNT, path, {"restype": "container"}, headers, AZURITE_KEY
    )
    status, body = http_request(f"{blob_url}{path}?restype=container", "PUT", b"", headers)
    return expect(f"create Azure container {bucket}", status, body, (201, 409))


def gcs_bucket(server, bucket):
    # Versioning on, as object_store's conformance suite expects (reads of `?generation=` of an
    # overwritten object); listings and reads of live objects are unaffected.
    body = json.dumps({"name": bucket, "versioning": {"enabled": True}}).encode()
    status, resp = http_request(
        f"{server}/storage/v1/b", "POST", body, {"Content-Type": "application/json"}
    )
    return expect(f"create GCS bucket {bucket}", status, resp, (200, 409))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("free-ports")
    p.add_argument("count", type=int)
    p = sub.add_parser("wait")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--status", type=int, default=None)
    p.add_argument("--deadline", type=float, default=120.0)
    for name in ("s3-bucket", "azure-container", "gcs-bucket"):
        p = sub.add_parser(name)
        p.add_argument("url")
        p.add_argument("bucket")
    args = parser.parse_args(argv)
    if args.cmd == "free-ports":
        print(" ".join(str(p) for p in free_ports(args.count)))
        return 0
    if args.cmd == "wait":
        return wait_ready(args.pid, args.port, args.url, args.status, args.deadline)
    create = {"s3-bucket": s3_bucket, "azure-container": azure_container, "gcs-bucket": gcs_bucket}
    try:
        return create[args.cmd](args.url.rstrip("/"), args.bucket)
    except OSError as err:
        print(f"{args.cmd} {args.url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
