"""The OCI image and the chart's Deployment, checked without a container runtime.

- The image's config: user, entrypoint, environment, exposed port, OCI labels.
- Its root filesystem, unpacked: exactly the binary, the libraries it links, the CA bundle,
  /etc/passwd and /etc/group; no shell.
- Its entrypoint, run with chroot as user 65532: `--version`, then serving with the rendered
  Deployment's environment and arguments against a fake Coder: the rendered probes' paths
  answer, /readyz turns 200 (the start-up time is measured), gRPC health (over gRPC-Web)
  says SERVING for the audit service, the GRPCRoute names only services the gateway serves,
  a caller's token reaches Coder, and SIGTERM drains and exits 0.

    python verify_image.py IMAGE.oci.tar CHART_OUT_DIR WORK_DIR
"""

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import fake_coder
from checks import check

ENTRYPOINT = "/usr/local/bin/coder-audit-gateway"
LABELS = ("source", "version", "revision", "licenses", "title", "description")


def blob(archive, digest):
    algorithm, value = digest.split(":", 1)
    return archive.extractfile(f"blobs/{algorithm}/{value}")


def read_image(path):
    """The image config, and its layers' media types, digests and sizes."""
    with tarfile.open(path) as archive:
        index = json.load(archive.extractfile("index.json"))
        manifest = json.load(blob(archive, index["manifests"][0]["digest"]))
        config = json.load(blob(archive, manifest["config"]["digest"]))
    return config, manifest["layers"]


def unpack(path, layers, rootfs):
    rootfs.mkdir(parents=True)
    with tarfile.open(path) as archive:
        for layer in layers:
            with tarfile.open(fileobj=blob(archive, layer["digest"]), mode="r:*") as files:
                files.extractall(rootfs, filter="tar")


def check_config(config):
    inner = config["config"]
    check(inner.get("User") == "65532:65532", f"user is {inner.get('User')!r}")
    check(inner.get("Entrypoint") == [ENTRYPOINT], f"entrypoint is {inner.get('Entrypoint')}")
    check("GATEWAY_LISTEN=0.0.0.0:8080" in inner.get("Env", []), f"env is {inner.get('Env')}")
    check("8080/tcp" in inner.get("ExposedPorts", {}), "port 8080 is not exposed")
    labels = inner.get("Labels", {})
    for label in LABELS:
        value = labels.get(f"org.opencontainers.image.{label}", "")
        check(value and value != "unknown", f"label {label} is {value!r}")
    print(f"  config: user {inner['User']}, entrypoint {inner['Entrypoint']}, env {inner['Env']}")
    print(f"  labels: {json.dumps(labels)}")


def interpreter(binary):
    """The ELF program interpreter (dynamic loader) a 64-bit little-endian binary names."""
    data = binary.read_bytes()
    check(data[:5] == b"\x7fELF\x02", "not a 64-bit ELF binary")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    size, count = struct.unpack_from("<HH", data, 0x36)
    for i in range(count):
        header = phoff + i * size
        if struct.unpack_from("<I", data, header)[0] == 3:  # PT_INTERP
            offset, length = struct.unpack_from("<Q", data, header + 8)[0], struct.unpack_from("<Q", data, header + 32)[0]
            return data[offset : offset + length].rstrip(b"\0").decode()
    return None


def check_files(rootfs):
    files = sorted("/" + str(p.relative_to(rootfs)) for p in rootfs.rglob("*") if not p.is_dir())
    print("  files: " + " ".join(files))
    expected = {ENTRYPOINT, "/etc/passwd", "/etc/group", "/etc/ssl/certs/ca-certificates.crt"}
    check(expected <= set(files), f"missing: {expected - set(files)}")
    extra = [f for f in files if f not in expected and not re.search(r"/lib[^/]*/.*\.so[.0-9]*$", f)]
    check(not extra, f"files beyond the binary, its libraries and config: {extra}")
    check(not any(f.endswith(("/sh", "/bash", "/busybox", "/apt", "/dpkg")) for f in files), "a shell or package manager")
    check("65532:65532" in (rootfs / "etc" / "passwd").read_text(), "no passwd entry for 65532")
    loader = interpreter(rootfs / ENTRYPOINT.lstrip("/"))
    check(loader is None or loader in files, f"the binary's loader {loader} is not in the image")


def http(url, data=None, headers=None, timeout=5):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def grpc_web_health(base, service):
    """grpc.health.v1.Health/Check over gRPC-Web (HTTP/1.1, no gRPC library): the status."""
    name = service.encode()
    message = b"\x0a" + bytes([len(name)]) + name
    frame = b"\x00" + struct.pack(">I", len(message)) + message
    status, _, body = http(
        f"{base}/grpc.health.v1.Health/Check",
        data=frame,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    check(status == 200, f"gRPC-Web health answered HTTP {status}")
    check(body[:1] == b"\x00", f"no data frame in {body!r}")
    length = struct.unpack(">I", body[1:5])[0]
    reply = body[5 : 5 + length]
    # HealthCheckResponse { status = 1 }: SERVING is 1, NOT_SERVING 2.
    return reply[1] if reply[:1] == b"\x08" else 0


def serve(rootfs, image_env, deployment, service, grpcroute):
    """Runs the entrypoint as the kubelet would: the image's environment, then the
    container's; the container's arguments."""
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = dict(item.split("=", 1) for item in image_env)
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    listen_port = int(env["GATEWAY_LISTEN"].rsplit(":", 1)[1])
    container_port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    target = service["spec"]["ports"][0]["targetPort"]
    check(listen_port == container_port, f"listens on {listen_port}, declares {container_port}")
    check(target == "http", f"the Service targets {target!r}, not the container's http port")

    coder, server = fake_coder.start()
    env.update({"CODER_URL": coder, "GATEWAY_LISTEN": "127.0.0.1:0"})
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    command = [chroot, "--userspec=65532:65532", str(rootfs), ENTRYPOINT, *container.get("args", [])]
    started = time.monotonic()
    gateway = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = None
        output = []
        while base is None:
            line = gateway.stdout.readline()
            check(line, "the gateway exited:\n" + "".join(output))
            output.append(line)
            found = re.search(r"serving GraphQL on (http://[^/\s\"]+)/graphql", line)
            base = found and found.group(1)
        check(line.lstrip().startswith("{"), f"the rendered config does not log JSON: {line}")
        while http(f"{base}/readyz")[0] != 200:
            check(time.monotonic() - started < 30, "/readyz never answered 200")
            time.sleep(0.01)
        ready = time.monotonic() - started
        print(f"  start-up: {ready * 1000:.0f} ms from exec to /readyz 200")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            check(http(f"{base}{path}")[0] == 200, f"{probe} {path} is not 200")
        check(grpc_web_health(base, "coder.audit.v1.AuditService") == 1, "gRPC health is not SERVING")
        index = json.loads(http(f"{base}/", headers={"accept": "application/json"})[2])
        routed = {m["method"]["service"] for r in grpcroute["spec"]["rules"] for m in r["matches"]}
        check(routed <= set(index["grpc"]["services"]), f"GRPCRoute names {routed - set(index['grpc']['services'])}")
        query = json.dumps({"query": "{ auditLogs(limit: 1) { count } }"}).encode()
        status, _, body = http(
            f"{base}/graphql",
            data=query,
            headers={"content-type": "application/json", "coder-session-token": fake_coder.TOKEN},
        )
        check(status == 200 and json.loads(body) == {"data": {"auditLogs": {"count": 0}}}, f"{status} {body!r}")
        print("  probes 200, gRPC health SERVING, GRPCRoute services served, a token reaches Coder")
        gateway.send_signal(signal.SIGTERM)
        check(gateway.wait(timeout=30) == 0, "SIGTERM did not end the gateway cleanly")
        return ready
    finally:
        if gateway.poll() is None:
            gateway.kill()
        server.shutdown()


def main():
    image, chart_out, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    check(os.geteuid() == 0, "chroot needs root")
    config, layers = read_image(image)
    print("== image config")
    check_config(config)
    rootfs = work / "rootfs"
    subprocess.run(["rm", "-rf", str(rootfs)], check=True)
    unpack(image, layers, rootfs)
    print("== image files")
    check_files(rootfs)
    version = subprocess.run(
        ["chroot", "--userspec=65532:65532", str(rootfs), ENTRYPOINT, "--version"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    check(version.startswith("coder-audit-gateway "), f"--version says {version!r}")
    print(f"== {version}, from the image, as 65532")
    print("== the rendered Deployment, run from the image against a fake Coder")
    rendered = json.loads((chart_out / "default.json").read_text())
    grpcroute = json.loads((chart_out / "grpcroute.json").read_text())
    ready = serve(rootfs, config["config"]["Env"], rendered["deployment"], rendered["service"], grpcroute)
    compressed = sum(layer["size"] for layer in layers)
    unpacked = sum(p.stat().st_size for p in rootfs.rglob("*") if p.is_file())
    summary = {
        "archive_bytes": image.stat().st_size,
        "compressed_layers_bytes": compressed,
        "layer_media_types": sorted({layer["mediaType"] for layer in layers}),
        "unpacked_bytes": unpacked,
        "startup_to_readyz_ms": round(ready * 1000),
    }
    (work / "image-summary.json").write_text(json.dumps(summary, indent=2))
    print("== summary " + json.dumps(summary))


if __name__ == "__main__":
    main()
