#!/usr/bin/env python3
"""Extract SDP bodies (verbatim, CRLF kept) of SIP messages from a capture: extract_sdp.py CAP OUTDIR.
Writes fN_SRCtoDST_{offer,answer}.sdp and the full message as .sip. Needs tshark."""
import subprocess, sys, os
cap, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
out = subprocess.run(['tshark','-r',cap,'-Y','sip && sdp','-T','fields','-e','frame.number','-e','udp.srcport','-e','udp.dstport','-e','udp.payload'],capture_output=True,text=True).stdout
for line in out.splitlines():
    no, sp, dp, hx = line.split('\t')
    raw = bytes.fromhex(hx.replace(':',''))
    head, _, body = raw.partition(b'\r\n\r\n')
    first = head.split(b'\r\n')[0].decode()
    kind = 'answer' if first.startswith('SIP/2.0') else 'offer'
    ua = [l for l in head.split(b'\r\n') if l.lower().startswith((b'user-agent:', b'server:'))]
    name = f"{outdir}/f{no}_{sp}to{dp}_{kind}.sdp"
    open(name,'wb').write(body)
    open(name[:-4]+'.sip','wb').write(raw)
    print(name, first, ua)
