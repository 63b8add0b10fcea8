#!/usr/bin/python3
"""Compare a backend tree with a mirror of it.

  mirror_compare.py BACKEND dir DIR
  mirror_compare.py BACKEND s3 ENDPOINT BUCKET PREFIX KEY SECRET [REGION]
  mirror_compare.py --tamper ENDPOINT BUCKET OBJECT KEY SECRET [REGION]

Every file, directory and symlink of BACKEND must be on the mirror with
the same content (symlinks: target), mode and mtime (to the second), and
the mirror must hold nothing else.  Prints the differences (at most 20)
and exits 1 if there are any; prints a one-line summary and exits 0 if
there are none.

S3 layout (cachefs(8), MIRRORS): PREFIX/path for files, PREFIX/path/ for
directories, metadata x-amz-meta-mode (octal) and x-amz-meta-mtime
(SECONDS.NANOSECONDS), symlinks with x-amz-meta-cachefs-type: symlink and
the target as body.  Requests are signed with AWS Signature Version 4.

--tamper changes one byte of an object on the S3 server, keeping its
size and metadata: a change behind cachefs that only a resync comparing
content finds.
"""
import datetime
import hashlib
import hmac
import os
import stat
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET


def local_tree(root):
    """{path: (type, mode, mtime_s, content_or_target)} below root."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(full, root)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                tree[rel] = ("d", mode, int(st.st_mtime), None)
            elif stat.S_ISLNK(st.st_mode):
                tree[rel] = ("l", None, None, os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    data = f.read()
                tree[rel] = ("f", mode, int(st.st_mtime),
                             hashlib.sha256(data).hexdigest(), len(data))
        dirnames[:] = [d for d in dirnames
                       if not os.path.islink(os.path.join(dirpath, d))]
    return tree


class S3:
    def __init__(self, endpoint, bucket, key, secret, region):
        self.endpoint = endpoint.rstrip("/")
        self.host = urllib.parse.urlparse(endpoint).netloc
        self.bucket, self.key, self.secret = bucket, key, secret
        self.region = region

    def _sign(self, method, path, query, payload=b"", extra=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate = now.strftime("%Y%m%dT%H%M%SZ")
        day = now.strftime("%Y%m%d")
        phash = hashlib.sha256(payload).hexdigest()
        canon_q = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}="
            f"{urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(query.items()))
        headers = {"host": self.host, "x-amz-content-sha256": phash,
                   "x-amz-date": amzdate}
        headers.update(extra or {})
        signed = ";".join(sorted(headers))
        canon = "\n".join([method, path, canon_q] +
                          [f"{k}:{headers[k]}" for k in sorted(headers)] +
                          ["", signed, phash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        tosign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                            hashlib.sha256(canon.encode()).hexdigest()])
        k = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, tosign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.key}/{scope}, "
            f"SignedHeaders={signed}, Signature={sig}")
        url = self.endpoint + path + ("?" + canon_q if canon_q else "")
        return urllib.request.Request(url, method=method, headers=headers,
                                      data=payload if payload else None)

    def _path(self, key):
        return "/" + self.bucket + "/" + urllib.parse.quote(key, safe="/-_.~")

    def keys(self, prefix):
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            with urllib.request.urlopen(
                    self._sign("GET", "/" + self.bucket, q)) as r:
                doc = ET.fromstring(r.read())
            ns = doc.tag[:doc.tag.index("}") + 1] if "}" in doc.tag else ""
            out += [c.find(ns + "Key").text
                    for c in doc.findall(ns + "Contents")]
            if doc.findtext(ns + "IsTruncated") != "true":
                return out
            token = doc.findtext(ns + "NextContinuationToken")

    def get(self, key):
        with urllib.request.urlopen(
                self._sign("GET", self._path(key), {})) as r:
            return r.read(), {k.lower(): v for k, v in r.headers.items()}


    def tamper(self, key):
        body, h = self.get(key)
        if not body:
            sys.exit(f"{key}: empty, nothing to change")
        body = bytes([body[0] ^ 1]) + body[1:]
        meta = {k: v for k, v in h.items() if k.startswith("x-amz-meta-")}
        with urllib.request.urlopen(
                self._sign("PUT", self._path(key), {}, body, meta)) as r:
            r.read()


def s3_tree(s3, prefix):
    tree = {}
    base = prefix.strip("/")
    base = base + "/" if base else ""
    for key in s3.keys(base):
        rel = "/" + key[len(base):]
        body, h = s3.get(key)
        mode = int(h.get("x-amz-meta-mode", "0"), 8)
        mtime = int(float(h.get("x-amz-meta-mtime", "0")))
        if key.endswith("/"):
            if rel != "/":
                tree[rel.rstrip("/")] = ("d", mode, mtime, None)
        elif h.get("x-amz-meta-cachefs-type") == "symlink":
            tree[rel] = ("l", None, None, body.decode())
        else:
            tree[rel] = ("f", mode, mtime, hashlib.sha256(body).hexdigest(),
                         len(body))
    return tree


def main():
    if sys.argv[1] == "--tamper":
        endpoint, bucket, obj, key, secret = sys.argv[2:7]
        region = sys.argv[7] if len(sys.argv) > 7 else "us-east-1"
        S3(endpoint, bucket, key, secret, region).tamper(obj)
        return
    backend, kind = sys.argv[1], sys.argv[2]
    want = local_tree(backend)
    if kind == "dir":
        got = local_tree(sys.argv[3])
    else:
        endpoint, bucket, prefix, key, secret = sys.argv[3:8]
        region = sys.argv[8] if len(sys.argv) > 8 else "us-east-1"
        got = s3_tree(S3(endpoint, bucket, key, secret, region), prefix)
        # S3 has no directories but the markers: the root has none
    diffs = []
    for path in sorted(set(want) | set(got)):
        w, g = want.get(path), got.get(path)
        if w != g:
            content = ""
            if w and g and w[3] != g[3]:
                content = (f" (content differs: {w[4:]} bytes on the "
                           f"backend, {g[4:]} on the mirror)")
            diffs.append(f"{path}: backend {w[:3] if w else None}, "
                         f"mirror {g[:3] if g else None}{content}")
    if diffs:
        print(f"{len(diffs)} differences:", file=sys.stderr)
        print("\n".join(diffs[:20]), file=sys.stderr)
        sys.exit(1)
    print(f"equal: {len(want)} entries")


main()
