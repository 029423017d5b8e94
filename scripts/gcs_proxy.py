#!/usr/bin/env python3
"""GCS XML-API translating proxy in front of fake-gcs-server, for tests only.

Owns: making object_store 0.14's GCS client (which writes through the GCS *XML* API) work against
fake-gcs-server (which implements the JSON API and only part of the XML API). Python stdlib only.

Translations (everything else is forwarded unchanged, so JSON API clients work through it too):
- XML `PUT /B/O` (optional `x-goog-if-generation-match`) -> JSON upload
  `POST /upload/storage/v1/b/B/o?uploadType=multipart` (metadata part carries the name,
  Content-Type, Cache-Control, Content-Disposition/-Encoding/-Language and `x-goog-meta-*`);
  answers `ETag` + `x-goog-generation`.
- XML multipart (`POST ?uploads`, `PUT ?partNumber&uploadId`, `POST ?uploadId` with the part
  list, `DELETE ?uploadId`) -> parts buffered in a temp dir, one JSON upload on completion.
- XML copy (`PUT` with `x-goog-copy-source`, optional `x-goog-if-generation-match: 0`)
  -> JSON `copyTo`.
- XML list (`GET /B?list-type=2&prefix&delimiter&start-after&continuation-token&max-keys`)
  -> JSON listing, rendered as S3-style XML with paging and exclusive `start-after` honoured.
- Conditional GET/HEAD (`If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`)
  evaluated here (fake-gcs-server ignores them): 304 / 412. `?generation=` is passed through
  (fake-gcs-server serves old generations of a versioned bucket). Object reads ask upstream for
  the stored bytes (`Accept-Encoding: gzip`), so gzip-encoded objects are not transcoded.

Must stay true:
- Preconditions are enforced here (fake-gcs-server ignores `ifGenerationMatch`): every write of
  one object name (put, multipart complete, copy destination, delete) runs under that name's
  lock, so of N racing create-if-absent writers through this proxy exactly one wins.
- Object names arrive percent-encoded (object_store encodes '/' as %2F); they are decoded once.
- Upstream requests carry Host = the upstream address, which fake-gcs-server uses to route XML.
- Every response has a Content-Length (HTTP/1.1 keep-alive with object_store's pooled client).
"""

import argparse
import base64
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

COPY_CHUNK = 1 << 20
DEFAULT_MAX_KEYS = 1000
LOCK_STRIPES = 64
DEFAULT_CONTENT_TYPE = "application/octet-stream"
META_PREFIX = "x-goog-meta-"
ATTRIBUTE_HEADERS = {
    "Cache-Control": "cacheControl",
    "Content-Disposition": "contentDisposition",
    "Content-Encoding": "contentEncoding",
    "Content-Language": "contentLanguage",
}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class ProxyError(Exception):
    """An error answered to the client as an XML error document."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Upstream:
    """fake-gcs-server; one short-lived connection per request."""

    def __init__(self, host, port):
        self.host, self.port = host, port

    def request(self, method, target, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.conn_to_close = conn
        return resp

    def call(self, method, target, body=None, headers=None):
        """Request and read fully: (status, headers, body)."""
        resp = self.request(method, target, body, headers)
        try:
            return resp.status, resp.getheaders(), resp.read()
        finally:
            resp.conn_to_close.close()

    def object_meta(self, bucket, name):
        """JSON metadata of an object, or None when absent."""
        status, _, body = self.call("GET", json_object_path(bucket, name))
        if status == 404:
            return None
        if status != 200:
            raise ProxyError(502, "UpstreamError", f"metadata of {name}: HTTP {status}")
        return json.loads(body)

    def upload(self, bucket, name, body, length, attrs):
        """JSON multipart upload (metadata + media); returns the new object's JSON metadata."""
        boundary = uuid.uuid4().hex
        meta = dict(attrs, name=name)
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(meta)}\r\n--{boundary}\r\n"
            f"Content-Type: {attrs.get('contentType', DEFAULT_CONTENT_TYPE)}\r\n\r\n"
        ).encode("utf-8")
        tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        headers = {
            "Content-Length": str(len(head) + length + len(tail)),
            "Content-Type": f"multipart/related; boundary={boundary}",
        }
        target = f"/upload/storage/v1/b/{quote(bucket)}/o?uploadType=multipart"
        status, _, resp = self.call("POST", target, multipart_body(head, body, tail), headers)
        if status != 200:
            raise ProxyError(502, "UpstreamError", f"upload of {name}: HTTP {status} {resp[:200]!r}")
        return json.loads(resp)


def multipart_body(head, body, tail):
    yield head
    while chunk := body.read(COPY_CHUNK):
        yield chunk
    yield tail


def upload_attributes(headers):
    """JSON object metadata from XML-API request headers (object_store's Attributes)."""
    attrs = {"contentType": headers.get("Content-Type", DEFAULT_CONTENT_TYPE)}
    for header, field in ATTRIBUTE_HEADERS.items():
        if headers.get(header) is not None:
            attrs[field] = headers[header]
    custom = {
        k[len(META_PREFIX):]: v for k, v in headers.items() if k.lower().startswith(META_PREFIX)
    }
    if custom:
        attrs["metadata"] = custom
    return attrs


def quote(name):
    return urllib.parse.quote(name, safe="")


def json_object_path(bucket, name):
    return f"/storage/v1/b/{quote(bucket)}/o/{quote(name)}"


def quoted_etag(meta):
    return f'"{meta["etag"]}"'


class Locks:
    """Striped locks keyed by object name (see the module invariant)."""

    def __init__(self):
        self.stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def of(self, bucket, name):
        digest = hashlib.sha1(f"{bucket}/{name}".encode("utf-8", "surrogatepass")).digest()
        return self.stripes[digest[0] % LOCK_STRIPES]


def check_generation_match(upstream, bucket, name, want):
    """Enforce x-goog-if-generation-match (caller holds the name's lock)."""
    if want is None:
        return
    meta = upstream.object_meta(bucket, name)
    current = "0" if meta is None else str(meta["generation"])
    if current != want.strip():
        raise ProxyError(412, "PreconditionFailed", f"{name}: generation {current} != {want}")


class MultipartStore:
    """In-progress XML multipart uploads, parts kept as files under one temp dir."""

    def __init__(self, root):
        self.root = root
        self.mutex = threading.Lock()
        self.uploads = {}  # upload id -> (bucket, name, upload attributes)

    def create(self, bucket, name, attrs):
        upload_id = uuid.uuid4().hex
        os.makedirs(os.path.join(self.root, upload_id))
        with self.mutex:
            self.uploads[upload_id] = (bucket, name, attrs)
        return upload_id

    def get(self, upload_id, bucket, name):
        with self.mutex:
            info = self.uploads.get(upload_id)
        if info is None or info[:2] != (bucket, name):
            raise ProxyError(404, "NoSuchUpload", f"no upload {upload_id} for {name}")
        return info

    def part_path(self, upload_id, number):
        return os.path.join(self.root, upload_id, f"{number:06d}")

    def remove(self, upload_id):
        with self.mutex:
            self.uploads.pop(upload_id, None)
        shutil.rmtree(os.path.join(self.root, upload_id), ignore_errors=True)


def parse_complete_body(body):
    """[(part number, etag)] from a CompleteMultipartUpload document."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise ProxyError(400, "MalformedXML", f"complete body: {err}") from err
    parts = []
    for part in root.iter():
        if part.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in part}
        try:
            parts.append((int(fields["PartNumber"]), fields["ETag"].strip()))
        except (KeyError, ValueError) as err:
            raise ProxyError(400, "MalformedXML", f"bad part entry: {fields}") from err
    return parts


class Lister:
    """S3-style (list-type=2) listing over the JSON list API."""

    def __init__(self, upstream, bucket, query):
        self.upstream, self.bucket = upstream, bucket
        self.prefix = query.get("prefix", "")
        self.delimiter = query.get("delimiter", "")
        self.start_after = query.get("start-after", "")
        self.max_keys = int(query.get("max-keys") or DEFAULT_MAX_KEYS)
        self.token = decode_token(query.get("continuation-token"))

    def items(self):
        """Objects after start-after / the token, in name order, across JSON pages."""
        floor = max(self.start_after, self.token[1] if self.token else "")
        params = {"prefix": self.prefix, "maxResults": "1000"}
        if floor:
            params["startOffset"] = floor
        while True:
            target = f"/storage/v1/b/{quote(self.bucket)}/o?{urllib.parse.urlencode(params)}"
            status, _, body = self.upstream.call("GET", target)
            if status == 404:
                raise ProxyError(404, "NoSuchBucket", self.bucket)
            if status != 200:
                raise ProxyError(502, "UpstreamError", f"list: HTTP {status}")
            page = json.loads(body)
            for item in sorted(page.get("items", []), key=lambda i: i["name"]):
                if item["name"] > floor:
                    yield item
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    def entries(self):
        """('key', item) and ('prefix', common prefix) in order, common prefixes collapsed."""
        last_prefix = self.token[1] if self.token and self.token[0] == "p" else None
        for item in self.items():
            name = item["name"]
            rest = name[len(self.prefix):]
            if self.delimiter and self.delimiter in rest:
                common = self.prefix + rest[: rest.index(self.delimiter) + len(self.delimiter)]
                if common != last_prefix:
                    last_prefix = common
                    yield "p", common
            elif last_prefix is None or not name.startswith(last_prefix):
                yield "k", item

    def render(self):
        page, next_token = [], None
        for kind, entry in self.entries():
            if len(page) == self.max_keys:
                last_kind, last = page[-1]
                next_token = encode_token(last_kind, last if last_kind == "p" else last["name"])
                break
            page.append((kind, entry))
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>']
        out.append(f"<Name>{escape(self.bucket)}</Name><Prefix>{escape(self.prefix)}</Prefix>")
        out.append(f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{self.max_keys}</MaxKeys>")
        out.append(f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>")
        for kind, entry in page:
            out.append(render_entry(kind, entry))
        if next_token:
            out.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        out.append("</ListBucketResult>")
        return "".join(out).encode("utf-8")


def render_entry(kind, entry):
    if kind == "p":
        return f"<CommonPrefixes><Prefix>{escape(entry)}</Prefix></CommonPrefixes>"
    modified = listing_time(entry)
    return (
        f"<Contents><Key>{escape(entry['name'])}</Key><LastModified>{modified}</LastModified>"
        f"<ETag>{escape(quoted_etag(entry))}</ETag><Size>{int(entry['size'])}</Size>"
        f"<Generation>{entry['generation']}</Generation></Contents>"
    )


def listing_time(entry):
    """<LastModified> as real GCS's XML listing reports it: millisecond precision (while the
    Last-Modified header of GET/HEAD has whole seconds). The value is the object's `timeCreated`,
    which is what Litestream reads through the JSON API (`attrs.Created`) and what real GCS's
    XML `LastModified` (= `updated`) equals for an object never modified after upload."""
    stamp = entry.get("timeCreated") or entry["updated"]  # e.g. 2025-05-06T10:00:00.123456789Z
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return f"{whole[:19]}.{(frac + '000')[:3]}Z"


def encode_token(kind, value):
    raw = json.dumps([kind, value]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_token(token):
    if not token:
        return None
    try:
        kind, value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        return kind, value
    except (ValueError, TypeError) as err:
        raise ProxyError(400, "InvalidArgument", f"bad continuation-token {token!r}") from err


def etag_matches(header, etag):
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or etag.strip('"') in [t.strip('"') for t in tags]


def parse_http_date(value):
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def evaluate_conditions(headers, meta_headers):
    """RFC 9110 order; returns None (serve), 304 or 412."""
    etag = meta_headers.get("etag", "")
    modified = parse_http_date(meta_headers.get("last-modified", ""))
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not etag_matches(if_match, etag):
            return 412
    else:
        since = parse_http_date(headers.get("If-Unmodified-Since", ""))
        if since is not None and modified is not None and modified > since:
            return 412
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        if etag_matches(if_none, etag):
            return 304
    else:
        since = parse_http_date(headers.get("If-Modified-Since", ""))
        if since is not None and modified is not None and modified <= since:
            return 304
    return None


CONDITIONAL = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")


class Handler(http.server.BaseHTTPRequestHandler):
    """One client connection; routes each request to a translation or a plain forward."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.log_date_time_string()} {fmt % args}\n")

    @property
    def up(self):
        return self.server.upstream

    def dispatch(self, method):
        self.started = False
        try:
            body, length = self.read_body()
            with body:
                self.route(method, body, length)
        except ProxyError as err:
            self.fail(err)
        except (OSError, http.client.HTTPException, ValueError, KeyError) as err:
            self.fail(ProxyError(502, "ProxyError", f"{type(err).__name__}: {err}"))

    def fail(self, err):
        if self.started:
            self.close_connection = True  # mid-response: the client sees a short body
            return
        self.log_message("error %s %s: %s", err.status, err.code, err.message)
        doc = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{err.code}</Code>"
        doc += f"<Message>{escape(err.message)}</Message></Error>"
        try:
            self.send_bytes(err.status, doc.encode("utf-8"), "application/xml")
        except OSError:
            self.close_connection = True  # the client went away (e.g. an aborted upload)

    def read_body(self):
        spool = tempfile.SpooledTemporaryFile(max_size=16 << 20, dir=self.server.tmpdir)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                copy_exact(self.rfile, spool, size)
                self.rfile.readline()
        else:
            copy_exact(self.rfile, spool, int(self.headers.get("Content-Length") or 0))
        length = spool.tell()
        spool.seek(0)
        return spool, length

    def route(self, method, body, length):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        segments = url.path.split("/", 2)
        if len(segments) < 2 or segments[1] in ("", "storage", "upload", "download", "_internal"):
            return self.forward(method, self.path, body, length)
        bucket = urllib.parse.unquote(segments[1])
        name = urllib.parse.unquote(segments[2]) if len(segments) > 2 else ""
        if not name:
            if method == "GET" and "list-type" in query:
                return self.send_bytes(200, Lister(self.up, bucket, query).render(), "application/xml")
            return self.forward(method, self.path, body, length)
        action = self.pick(method, query)
        if action is None:
            return self.forward(method, self.path, body, length)
        return action(bucket, name, query, body, length)

    def pick(self, method, query):
        if method == "POST" and "uploads" in query:
            return self.initiate
        if "uploadId" in query:
            return {"PUT": self.put_part, "POST": self.complete, "DELETE": self.abort}.get(method)
        if method == "PUT":
            return self.copy if self.headers.get("x-goog-copy-source") else self.put_object
        if method in ("GET", "HEAD"):
            return self.get_object
        if method == "DELETE":
            return self.delete_object
        return None

    # --- single requests -------------------------------------------------------------------

    def put_object(self, bucket, name, query, body, length):
        attrs = upload_attributes(self.headers)
        with self.server.locks.of(bucket, name):
            check_generation_match(
                self.up, bucket, name, self.headers.get("x-goog-if-generation-match")
            )
            meta = self.up.upload(bucket, name, body, length, attrs)
        self.send_bytes(200, b"", None, object_headers(meta))

    def copy(self, bucket, name, query, body, length):
        source = urllib.parse.unquote(self.headers["x-goog-copy-source"]).lstrip("/")
        src_bucket, _, src_name = source.partition("/")
        target = f"{json_object_path(src_bucket, src_name)}/copyTo/b/{quote(bucket)}/o/{quote(name)}"
        with self.server.locks.of(bucket, name):
            # A missing source is NotFound even when the destination precondition also fails.
            if self.up.object_meta(src_bucket, src_name) is None:
                raise ProxyError(404, "NoSuchKey", f"copy source {source}")
            check_generation_match(
                self.up, bucket, name, self.headers.get("x-goog-if-generation-match")
            )
            status, _, resp = self.up.call("POST", target, b"", {"Content-Length": "0"})
        if status == 404:
            raise ProxyError(404, "NoSuchKey", f"copy source {source}")
        if status != 200:
            raise ProxyError(502, "UpstreamError", f"copy {source}: HTTP {status} {resp[:200]!r}")
        meta = json.loads(resp)
        doc = f"<CopyObjectResult><ETag>{escape(quoted_etag(meta))}</ETag></CopyObjectResult>"
        self.send_bytes(200, doc.encode("utf-8"), "application/xml", object_headers(meta))

    def delete_object(self, bucket, name, query, body, length):
        with self.server.locks.of(bucket, name):
            self.forward("DELETE", self.path, body, length)

    def get_object(self, bucket, name, query, body, length):
        target = object_xml_path(bucket, name)
        if "generation" in query:
            target += "?" + urllib.parse.urlencode({"generation": query["generation"]})
        if any(h in self.headers for h in CONDITIONAL):
            status, headers, _ = self.up.call("HEAD", target)
            if status == 200:
                meta = {k.lower(): v for k, v in headers}
                verdict = evaluate_conditions(self.headers, meta)
                if verdict is not None:
                    keep = {k: meta[k] for k in ("etag", "last-modified") if k in meta}
                    return self.send_bytes(verdict, b"", None, keep if verdict == 304 else {})
        # Stored bytes as-is: fake-gcs-server would otherwise gunzip gzip-encoded objects.
        headers = {"Accept-Encoding": "gzip"}
        if "Range" in self.headers:
            headers["Range"] = self.headers["Range"]
        self.relay(self.up.request(self.command, target, None, headers))

    # --- multipart ---------------------------------------------------------------------------

    def initiate(self, bucket, name, query, body, length):
        upload_id = self.server.multipart.create(bucket, name, upload_attributes(self.headers))
        doc = (
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult>"
            f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(name)}</Key>"
            f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
        )
        self.send_bytes(200, doc.encode("utf-8"), "application/xml")

    def put_part(self, bucket, name, query, body, length):
        store, upload_id = self.server.multipart, query["uploadId"]
        store.get(upload_id, bucket, name)
        number = int(query.get("partNumber", "0"))
        if not 1 <= number <= 10000:
            raise ProxyError(400, "InvalidArgument", f"partNumber {number}")
        final = store.part_path(upload_id, number)
        tmp = f"{final}.{uuid.uuid4().hex}"
        digest = hashlib.md5()
        with open(tmp, "wb") as out:
            while chunk := body.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        os.replace(tmp, final)
        self.send_bytes(200, b"", None, {"ETag": f'"{digest.hexdigest()}"'})

    def complete(self, bucket, name, query, body, length):
        store, upload_id = self.server.multipart, query["uploadId"]
        _, _, attrs = store.get(upload_id, bucket, name)
        parts = parse_complete_body(body.read())
        numbers = [n for n, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise ProxyError(400, "InvalidPartOrder", f"parts {numbers}")
        with tempfile.TemporaryFile(dir=self.server.tmpdir) as whole:
            for number, etag in parts:
                append_part(store.part_path(upload_id, number), etag, whole)
            size = whole.tell()
            whole.seek(0)
            with self.server.locks.of(bucket, name):
                meta = self.up.upload(bucket, name, whole, size, attrs)
        store.remove(upload_id)
        doc = (
            "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult>"
            f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(name)}</Key>"
            f"<ETag>{escape(quoted_etag(meta))}</ETag></CompleteMultipartUploadResult>"
        )
        self.send_bytes(200, doc.encode("utf-8"), "application/xml", object_headers(meta))

    def abort(self, bucket, name, query, body, length):
        store, upload_id = self.server.multipart, query["uploadId"]
        store.get(upload_id, bucket, name)
        store.remove(upload_id)
        self.send_bytes(204, b"", None)

    # --- plumbing ----------------------------------------------------------------------------

    def forward(self, method, target, body, length):
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {"host"}
        }
        headers["Content-Length"] = str(length)
        send_body = body if length or method in ("POST", "PUT", "PATCH") else None
        self.relay(self.up.request(method, target, send_body, headers))

    def relay(self, resp):
        """Copy an upstream response to the client (streaming when its length is known)."""
        try:
            length = resp.getheader("Content-Length")
            data = None
            if length is None and self.command != "HEAD":
                data = resp.read()
                length = str(len(data))
            self.started = True
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command == "HEAD" or resp.status in (204, 304):
                return
            if data is not None:
                self.wfile.write(data)
                return
            while chunk := resp.read(COPY_CHUNK):
                self.wfile.write(chunk)
        finally:
            resp.conn_to_close.close()

    def send_bytes(self, status, data, content_type, headers=None):
        self.started = True
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)


def object_xml_path(bucket, name):
    return f"/{quote(bucket)}/{urllib.parse.quote(name, safe='/')}"


def object_headers(meta):
    return {"ETag": quoted_etag(meta), "x-goog-generation": str(meta["generation"])}


def copy_exact(src, dst, size):
    while size > 0:
        chunk = src.read(min(size, COPY_CHUNK))
        if not chunk:
            raise ProxyError(400, "IncompleteBody", f"request body ended {size} bytes early")
        dst.write(chunk)
        size -= len(chunk)


def append_part(path, etag, out):
    """Append one part file to `out`, checking it is the part the client meant."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as part:
            while chunk := part.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except FileNotFoundError as err:
        raise ProxyError(400, "InvalidPart", f"missing part {path}") from err
    if f'"{digest.hexdigest()}"' != etag and digest.hexdigest() != etag:
        raise ProxyError(400, "InvalidPart", f"part {path} etag {etag} does not match")


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Linux SO_REUSEADDR never lets two listeners share a port; it only ignores TIME_WAIT.
    allow_reuse_address = True
    # object_store opens many pooled connections at once (parallel parts, racing writers).
    request_queue_size = 128

    def __init__(self, address, upstream, tmpdir, quiet):
        super().__init__(address, Handler)
        self.upstream, self.tmpdir, self.quiet = upstream, tmpdir, quiet
        self.locks = Locks()
        self.multipart = MultipartStore(os.path.join(tmpdir, "multipart"))


def main(argv):
    parser = argparse.ArgumentParser(description="GCS XML-API proxy for fake-gcs-server (tests)")
    parser.add_argument("--port", type=int, required=True, help="listen port on 127.0.0.1")
    parser.add_argument("--upstream", required=True, help="fake-gcs-server URL, http://HOST:PORT")
    parser.add_argument("--tmpdir", default=None, help="where multipart parts are buffered")
    parser.add_argument("--quiet", action="store_true", help="log errors only")
    args = parser.parse_args(argv)
    up = urllib.parse.urlsplit(args.upstream)
    tmpdir = tempfile.mkdtemp(prefix="gcs-proxy-", dir=args.tmpdir)
    os.makedirs(os.path.join(tmpdir, "multipart"))
    server = ProxyServer(("127.0.0.1", args.port), Upstream(up.hostname, up.port), tmpdir, args.quiet)
    # SIGTERM (how scripts/services.sh stops servers) unwinds through `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"gcs proxy on 127.0.0.1:{server.server_address[1]} -> {args.upstream}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
