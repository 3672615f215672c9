#!/usr/bin/env python3
"""Send one command to baresip's ctrl_tcp module (netstring-framed JSON) and print the reply.
usage: baresip_ctrl.py PORT COMMAND [PARAMS]   e.g.  baresip_ctrl.py 4444 dial sip:x@198.18.0.1:5064
       baresip_ctrl.py 4444 hangup ; baresip_ctrl.py 4444 quit"""
import json, socket, sys
port, cmd = int(sys.argv[1]), sys.argv[2]
msg = {"command": cmd, "token": "t1"}
if len(sys.argv) > 3:
    msg["params"] = " ".join(sys.argv[3:])
body = json.dumps(msg).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(str(len(body)).encode() + b":" + body + b",")
buf = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
        # wait for the reply to our command (responses carry "response":true)
        if b'"response":true' in buf and buf.endswith(b","):
            break
except socket.timeout:
    pass
print(buf.decode(errors="replace"))
