#!/usr/bin/env bash
# Seed the fuzzing corpora: fuzz/corpus/<target>/ from the conformance data
# (../shared/conformance, or $CONFORMANCE) and from inputs written here (references,
# filters, manifests, create bodies, hostile layer tars, registry paths).
# The corpora are not committed; running this again adds the seeds back (existing
# corpus entries found by earlier runs are kept).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
conf="${CONFORMANCE:-$repo/../shared/conformance}"
if [ ! -d "$conf" ] && [ -d /work/shared/conformance ]; then
    conf=/work/shared/conformance
fi
corpus="$here/corpus"
mkdir -p "$corpus"

have_conf=1
if [ ! -d "$conf" ]; then
    echo "seed.sh: no conformance data at $conf; only the built-in seeds" >&2
    have_conf=0
fi

python3 - "$corpus" "$conf" "$have_conf" "$repo" <<'PY'
import hashlib, io, json, os, sys, tarfile, glob

corpus, conf, have_conf, repo = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def read(p):
    with open(p, "rb") as f:
        return f.read()

# --- dockerfile_parse: the parser's conformance cases and every Dockerfile around ---
dockerfiles = []
if have_conf:
    dockerfiles += glob.glob(f"{conf}/dockerfile/testfiles*/*/Dockerfile")
    dockerfiles += glob.glob(f"{conf}/dockerfile/testfile-line/Dockerfile")
    dockerfiles += glob.glob(f"{conf}/compose/corpus/**/Dockerfile", recursive=True)
for root, dirs, files in os.walk(repo):
    dirs[:] = [x for x in dirs if x not in ("target", ".git", "fuzz")]
    for f in files:
        if f == "Dockerfile" or f.endswith(".Dockerfile"):
            dockerfiles.append(os.path.join(root, f))
for p in dockerfiles:
    put("dockerfile_parse", read(p))
for s in [
    "FROM busybox AS build\nARG X=1\nRUN --mount=type=cache,target=/c,id=${X} echo $X\n"
    "COPY --from=build --chown=1:1 --chmod=755 a b\nONBUILD RUN echo hi\n",
    "# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN echo `\n  hi\n",
    "FROM alpine\nRUN <<EOF\necho hello\nEOF\nCOPY <<-\"X\" /f\n\tcontent $HOME\nX\n",
    "FROM a\nHEALTHCHECK --interval=5s --timeout=1m30s CMD [\"true\"]\nENV A=1 B=\"2 3\" C\\ D=4\n"
    "LABEL a=b \"c d\"=e\nEXPOSE 80/tcp ${P:-443}\nSHELL [\"/bin/sh\",\"-c\"]\nSTOPSIGNAL SIGKILL\n"
    "USER 1:1\nWORKDIR /w\nVOLUME [\"/v\"]\nENTRYPOINT [\"sh\"]\nCMD [\"-c\",\"x\"]\nADD --keep-git-dir=true http://x/y /z\n",
    "ARG BASE=busybox\nFROM ${BASE}:${TAG:-latest} AS s1\nFROM s1\nMAINTAINER me\n",
]:
    put("dockerfile_parse", s)

# --- dockerfile_lex: the lexer's conformance cases (option byte, then the word) ---
if have_conf:
    for f, opts in (("lex-word-cases.json", [0, 1]), ("lex-words-cases.json", [0])):
        cases = json.load(open(f"{conf}/dockerfile/{f}"))["cases"]
        for c in cases:
            for o in opts:
                put("dockerfile_lex", bytes([o]) + c["input"].encode())
for m in [
    "type=cache,target=/root/.cache,id=${ID},sharing=locked",
    "type=bind,source=.,target=/src,rw",
    "type=secret,id=aws,target=/root/.aws/credentials,required",
    "type=ssh,id=default,mode=0600,uid=0,gid=0",
    "type=tmpfs,target=/t,size=64m",
    "\"type=cache,target=/a b\",from=stage",
]:
    put("dockerfile_lex", bytes([32]) + m.encode())

# --- image_reference ---
for r in [
    "busybox", "busybox:1.36", "docker.io/library/busybox:latest", "library/busybox",
    "myrepo/bb", "127.0.0.1:5000/app:v1", "localhost/app", "localhost:5000/a/b/c:tag",
    "ghcr.io/owner/repo@sha256:" + "a" * 64, "busybox:1.36@sha256:" + "0" * 64,
    "Foo/bar", "UPPER", "a__b", "a---b", "a..b", "registry.example.com:443/x_y.z-w",
    "busybox\nlatest", "imported\n1", "busybox\nsha256:" + "b" * 64,
    "sha256:" + "c" * 64, "linux/amd64", "linux/arm64/v8", "arm64",
    'CMD ["sh","-c","echo hi"]', "ENV A=1 B=2", "EXPOSE 80/tcp", "LABEL a=b",
    "USER 1000:1000", "WORKDIR /app", "VOLUME /data", "ENTRYPOINT sh",
    "STOPSIGNAL SIGTERM", "ONBUILD RUN true", "HEALTHCHECK CMD true",
]:
    put("image_reference", r)

# --- manifest: manifests, indexes and configs (manifest, 0xFF, config) ---
def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "1" * 64, "size": 32}
config = {
    "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]},
    "history": [{"created_by": "x", "empty_layer": True}],
}
cfg_raw = json.dumps(config).encode()
cfg_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(cfg_raw), "size": len(cfg_raw)}
oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg_desc, "layers": [layer]}
docker = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "config": dict(cfg_desc, mediaType="application/vnd.docker.container.image.v1+json"),
          "layers": [dict(layer, mediaType="application/vnd.docker.image.rootfs.diff.tar.gzip")]}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "3" * 64, "size": 500,
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "4" * 64, "size": 500,
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}],
    "annotations": {"org.opencontainers.image.ref.name": "latest"}}
artifact = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/x-sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", urls=["http://x/y"])],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "5" * 64, "size": 9}}
zstd = dict(oci, layers=[dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar+zstd")])
for m in (oci, docker, index, artifact, zstd):
    raw = json.dumps(m).encode()
    put("manifest", raw)
    put("manifest", raw + b"\xff" + cfg_raw)
put("manifest", cfg_raw)
put("manifest", b'{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}')
if have_conf:
    for p in glob.glob(f"{conf}/image-spec/schema/*.json"):
        put("manifest", read(p))

# --- api_query: filters (both forms), booleans, sizes, durations, times, versions ---
for s in [
    '{"label":{"a=1":true},"dangling":{"true":true}}', '{"label":["a=1","b"],"name":["web"]}',
    '{"until":["24h"],"reference":["busybox*"]}', '{"label!":{"a":true}}', '{"status":"running"}',
    '{"reference":{"docker.io/library/*:[a-z]*":true}}', "", "true", "False", "0", "none",
    "64m", "1.5g", "100kb", "2gib", "1p", "300ms", "1h30m", "1.5h", "2h45m10.5s", "10µs",
    "2026-01-01T00:00:00Z", "2026-01-01", "2026-01-01T10:00", "1767225600.5", "1.41", "/v1.41/containers/json",
    "1.24", "1.99", "*.txt\nfile.txt", "[a-c]?\\*\nb1*", "[^x]\ny", "a/*/c\na/b/c",
    "\x01\x00\x00\x00\x00\x00\x00\x05hello\x02\x00\x00\x00\x00\x00\x00\x03err",
]:
    put("api_query", s)

# --- api_create: container create bodies ---
bodies = [
    {"Image": "busybox", "Cmd": ["echo", "hi"], "HostConfig": {"Binds": ["/tmp:/data:ro", "vol:/v", "/anon"]}},
    {"Image": "busybox", "MacAddress": "02:42:ac:11:00:02", "HostConfig": {
        "Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/t", "BindOptions": {"Propagation": "rshared", "CreateMountpoint": True}},
                   {"Type": "volume", "Source": "named", "Target": "/n", "VolumeOptions": {"NoCopy": True, "DriverConfig": {"Name": "local"}}},
                   {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1777}}],
        "VolumesFrom": ["other:ro", "x"], "Tmpfs": {"/tmp": "rw,size=64m"}, "VolumeDriver": "local",
        "Memory": 67108864, "NanoCpus": 500000000, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}},
    {"Image": "x", "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
     "NetworkingConfig": {"EndpointsConfig": {"net": {"Aliases": ["a"], "IPAMConfig": {"IPv4Address": "10.0.0.2"}}}},
     "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, "Binds": ["a:b:c:d", "vol:/v:nocopy,rw"]}},
]
for b in bodies:
    put("api_create", json.dumps(b))

# --- layer_unpack: ordinary, whiteout and hostile layer tars ---
def tar_of(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            data = b""
            if kind == "file":
                data = e[2] if len(e) > 2 else b"hello\n"
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2] if len(e) > 2 else 0o755
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
            elif kind == "link":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "xattr":
                data = b"x"
                ti.size = 1
                ti.pax_headers = {"SCHILY.xattr.user.test": "v"}
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()

layers = [
    [("dir", "etc/"), ("file", "etc/hostname"), ("sym", "bin", "usr/bin"), ("dir", "usr/bin/"), ("file", "usr/bin/sh", b"#!")],
    [("dir", "a/"), ("file", "a/.wh.gone"), ("file", "a/.wh..wh..opq"), ("file", ".wh.top")],
    [("file", "f"), ("link", "g", "f"), ("chr", "dev/null"), ("fifo", "p")],
    [("sym", "esc", "../canary"), ("file", "esc/owned")],
    [("sym", "esc", "../canary"), ("dir", "esc/", 0o777)],
    [("sym", "esc", "../canary"), ("dir", "esc", 0o700)],
    [("sym", "esc", "../canary"), ("file", "esc/.wh.x")],
    [("sym", "esc", "../canary"), ("file", "esc/.wh..wh..opq")],
    [("sym", "esc", "../canary"), ("chr", "esc/dev")],
    [("sym", "esc", "../canary"), ("link", "h", "esc")],
    [("sym", "esc", "../canary"), ("link", "esc/x", "f")],
    [("sym", "esc", "../canary"), ("sym", "esc/y", "/")],
    [("sym", "esc", "/"), ("file", "esc/tmp/owned")],
    [("file", "../canary/owned")],
    [("file", "/../canary/owned")],
    [("link", "x", "../canary")],
    [("sym", "d", "."), ("file", "d/d/d/f")],
    [("sym", "esc", "../canary"), ("sym", ".wh.esc", "x")],
    [("file", ".wh...")],
    [("file", ".wh.")],
    [("dir", "z/"), ("file", "z/.wh..")],
]
for l in layers:
    put("layer_unpack", tar_of(l))
put("layer_unpack", tar_of([("xattr", "x"), ("dir", "d/"), ("file", "d/" + "l" * 150)], tarfile.PAX_FORMAT))
put("layer_unpack", tar_of([("file", "L" * 120 + "/" + "n" * 120)], tarfile.GNU_FORMAT))

# --- compose_load: the compose conformance corpus ---
if have_conf:
    for p in glob.glob(f"{conf}/compose/corpus/**/*", recursive=True):
        if p.endswith((".yaml", ".yml")) and os.path.isfile(p):
            put("compose_load", read(p))
put("compose_load", "services:\n  web:\n    image: nginx:${TAG}\n    ports: [\"8080:80\"]\n"
    "    depends_on: {db: {condition: service_healthy}}\n  db:\n    image: postgres\n"
    "    healthcheck: {test: [\"CMD\", \"true\"], interval: 1m30s}\nvolumes: {data: {}}\n")

# --- registry_route: path, Range, Content-Range (htpasswd as a whole) ---
for s in [
    "/v2/\nbytes=0-1\n0-99", "/v2/_catalog", "/v2/a/b/tags/list\nbytes=-500",
    "/v2/a/manifests/latest\nbytes=500-\nbytes 100-199/*",
    "/v2/a/b/blobs/sha256%3A" + "a" * 64 + "\nbytes=1000-5000\n5-1",
    "/v2/a/blobs/uploads/\nitems=0-1", "/v2/x/blobs/blobs/uploads/123", "/v2/a/referrers/sha256:" + "b" * 64,
    "/v2/a/manifests/sha512:" + "c" * 128, "/v3/a/manifests/x", "/v2/%2e%2e/manifests/x",
    "user:$2y$05$abcdefghijklmnopqrstuu5Y1OpOGSUHfYw7Rk1lZJ9pO/rYzQfQe\n# comment",
]:
    put("registry_route", s)

for t in sorted(counts):
    print(f"seeded {t}: {counts[t]} inputs")
PY
