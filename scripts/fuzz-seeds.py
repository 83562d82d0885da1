#!/usr/bin/env python3
"""Writes the seed corpora of `make fuzz` into DIR/<harness>/ (from the RHP vectors, the config file and
the API contract's examples); kept crashers under Tests/Fixtures/fuzz/ are passed to libFuzzer separately."""
import json, os, shutil, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1]
vectors = os.path.join(root, "Tests/Fixtures/rhp-vectors")


def put(harness, name, data):
    directory = os.path.join(out, harness)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


for kind in ("positive", "negative"):
    for v in json.load(open(os.path.join(vectors, kind + ".json")))["vectors"]:
        if "cbor_hex" in v:
            put("cbor", f"{kind}-{v['name']}", bytes.fromhex(v["cbor_hex"]))
        if "framed_hex" in v:
            for role in ("rhp-host", "rhp-guest"):
                put(role, f"{kind}-{v['name']}", bytes.fromhex(v["framed_hex"]))
for v in json.load(open(os.path.join(vectors, "framing.json")))["vectors"]:
    for role in ("rhp-host", "rhp-guest"):
        put(role, f"framing-{v['name']}", bytes.fromhex(v["stream_hex"]))

spec = {"name": "km", "id": "0" * 63 + "1", "executable": "/bin/true", "args": ["--x"], "env": {"A": "b"},
        "binds": [{"source": "/etc/hostname", "target": "/etc/hostname", "mode": "ro"}],
        "data": [{"target": "/etc/x", "content_base64": "aGk="}], "network": False, "mount_proc": True,
        "local_config": {"k": [1, 2]}, "expected_version": "1.2.3", "sandbox": "namespaces", "autostart": False}
body = json.dumps(spec)
requests = {
    "provision": f"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}",
    "list": "GET /v1/runtimes HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
    "status": "GET /v1/runtimes/km%2e HTTP/1.1\r\nHost: x\r\n\r\n",
    "abort": 'POST /v1/runtimes/km/abort HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{"force":true}',
    "chunked": f"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n{body}\r\n0\r\n\r\n",
    "delete": "DELETE /v1/runtimes/km HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/runtimes/km/stop HTTP/1.1\r\nHost: x\r\n\r\n",
    "events": "GET /v1/events?runtime=km&follow=false HTTP/1.1\r\nHost: x\r\n\r\n",
}
for name, text in requests.items():
    put("http", name, text)

put("config", "sandboxd.yaml", open(os.path.join(root, "config/sandboxd.yaml"), "rb").read())
put("config", "declared.yaml", "runtimes:\n  - {name: a, id: \"%s\", executable: /bin/true, sandbox: none}\n"
    "api: {max_connections: 4, request_timeout: 1.5s}\nsandbox: {allow_none: true}\n" % ("0" * 63 + "2"))

for binary in ("/bin/true", "/usr/bin/env"):
    data = open(binary, "rb").read()
    if len(data) <= 65536:
        put("elf", os.path.basename(binary), data)
with tempfile.TemporaryDirectory() as scratch:
    source = os.path.join(scratch, "s.c")
    open(source, "w").write('void _start(void) { __asm__ volatile("mov $60, %eax\\n xor %edi, %edi\\n syscall"); }\n')
    target = os.path.join(scratch, "start")
    if subprocess.call(["cc", "-nostdlib", "-fPIE", "-pie", "-Wl,-rpath,/nonexistent:$ORIGIN", "-o", target, source]) == 0:
        put("elf", "interpreter-only", open(target, "rb").read())
for harness in ("cbor", "rhp-host", "rhp-guest", "http", "config", "elf"):
    print(harness, len(os.listdir(os.path.join(out, harness))), "seeds")
