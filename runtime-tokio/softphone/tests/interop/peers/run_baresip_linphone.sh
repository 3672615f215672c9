#!/bin/bash
# Self-test of the peer recipes: baresip <-> linphonec, DTLS-SRTP + ICE, both directions,
# inside a private network namespace (nothing leaves it).
#   usage: run_baresip_linphone.sh OUTDIR [direct|registrar] [opus|pcmu]
# A: linphonec calls baresip (baresip auto-answers); B: baresip calls linphonec (-a).
# baresip plays 440 Hz, linphonec 880 Hz; recordings and SIP capture land in OUTDIR;
# ends by printing the analysis of the recordings and extracting the SDP bodies.
# Needs: baresip-core linphone-cli sox python3-numpy tshark (dumpcap) [kamailio].
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${IN_NETNS:-}" ]; then
  exec env IN_NETNS=1 unshare -n "$0" "$@"   # root; use "unshare -rn" as non-root
fi
D=$(realpath -m "$1"); MODE=${2:-direct}; CODEC=${3:-opus}
rm -rf "$D"; mkdir -p "$D"
ip link set lo up; ip addr add 198.18.0.1/32 dev lo; ip route add default dev lo src 198.18.0.1

BPORT=5062; LPORT=5064; REG=198.18.0.1:5060; DOM=198.18.0.1
if [ "$CODEC" = opus ]; then BCODECS=opus/48000/2,pcmu; OPUS=1; else BCODECS=pcmu; OPUS=0; fi
sox -n -r 48000 -c 1 -b 16 -e signed-integer "$D/tone440.wav" synth 60 sine 440 vol 0.5
sox -n -r 48000 -c 1 -b 16 -e signed-integer "$D/tone880.wav" synth 60 sine 880 vol 0.5

mk_baresip() { # DIR USER PASSWORD
  mkdir -p "$1"
  local acc=accounts; [ "$MODE" = registrar ] && acc=accounts.registrar
  sed -e "s#@PORT@#$BPORT#g; s#@DIR@#$1#g; s#@TONE@#$D/tone440.wav#g; s#@CTRLPORT@#4444#g; s#@RTPPORT@#16000#g; s#@RTPPORTEND@#16099#g" \
    "$HERE/baresip/config" > "$1/config"
  sed -e "s#@PORT@#$BPORT#g; s#@USER@#$2#g; s#@PASSWORD@#$3#g; s#@DOMAIN@#$DOM#g; s#@REGISTRAR@#$REG#g; s#@AUDIO_CODECS@#$BCODECS#g; s#@MEDIA@#;mediaenc=dtls_srtp;medianat=ice#g" \
    "$HERE/baresip/$acc" > "$1/accounts"
}
mk_linphone() { # DIR USER PASSWORD
  mkdir -p "$1/.local/share/linphone"          # liblinphone never starts its SIP stack without it
  local proxy=-1 extra=/dev/null
  [ "$MODE" = registrar ] && { proxy=0; extra="$HERE/linphone/linphonerc.proxy"; }
  cat "$HERE/linphone/linphonerc" "$extra" | sed -e "s#@PORT@#$LPORT#g; s#@RTPPORT@#17000#g; s#@RTPPORTEND@#17099#g; s#@DEFAULT_PROXY@#$proxy#g; s#@OPUS@#$OPUS#g; s#@USER@#$2#g; s#@PASSWORD@#$3#g; s#@DOMAIN@#$DOM#g; s#@REGISTRAR@#$REG#g; s#@ENCRYPTION@#dtls#g; s#@MANDATORY@#1#g; s#@AVPF@#1#g; s#@NAT_POLICY@#ice_only#g" > "$1/linphonerc"
}
start_linphonec() { # DIR
  mkfifo "$1/cmd"
  HOME="$1" linphonec -c "$1/linphonerc" -a -d 6 -l "$1/log.txt" < "$1/cmd" > "$1/stdout.txt" 2>&1 &
  LP=$!
  exec 3>"$1/cmd"                               # keep the FIFO open: EOF would end linphonec
  echo "soundcard use files" >&3                # no sound card: WAV files instead
  echo "play $D/tone880.wav" >&3                # microphone
  echo "record $1/rec.wav" >&3                  # loudspeaker
}
stop_linphonec() { echo terminate >&3; sleep 1; echo quit >&3; exec 3>&-; wait $LP; echo "linphonec exit $?"; }

dumpcap -q -i lo -f "udp port 5060 or udp port $BPORT or udp port $LPORT" -w "$D/sip.pcapng" > "$D/dumpcap.log" 2>&1 & DC=$!
KP=
if [ "$MODE" = registrar ]; then
  mkdir -p "$D/kamailio"
  kamailio -f "$HERE/../kamailio.cfg" -DD -E -m 64 -M 8 -l udp:$REG -w "$D/kamailio" -P "$D/kamailio/pid" > "$D/kamailio/log.txt" 2>&1 & KP=$!
  BURI=sip:alice@$DOM; LURI=sip:bob@$DOM
else
  BURI=sip:baresip@198.18.0.1:$BPORT; LURI=sip:linphone@198.18.0.1:$LPORT
fi
sleep 2

echo "### A: linphonec calls $BURI"
mk_baresip "$D/a/baresip" alice alice-pw; [ "$MODE" = direct ] && sed -i 's/alice@/baresip@/' "$D/a/baresip/accounts"
mk_linphone "$D/a/linphone" bob bob-pw
baresip -f "$D/a/baresip" -v -t 30 < /dev/null > "$D/a/baresip.log" 2>&1 & BP=$!
start_linphonec "$D/a/linphone"; sleep 3
echo "call $BURI" >&3; sleep 12
stop_linphonec; kill $BP; wait $BP; echo "baresip exit $?"

echo "### B: baresip calls $LURI"
mk_baresip "$D/b/baresip" alice alice-pw; [ "$MODE" = direct ] && sed -i 's/alice@/baresip@/' "$D/b/baresip/accounts"
mk_linphone "$D/b/linphone" bob bob-pw
start_linphonec "$D/b/linphone"; sleep 3
baresip -f "$D/b/baresip" -v -t 30 -e "/dial $LURI" < /dev/null > "$D/b/baresip.log" 2>&1 & BP=$!
sleep 12
/usr/bin/python3 "$HERE/baresip_ctrl.py" 4444 hangup > "$D/b/ctrl_hangup.txt"
sleep 1
/usr/bin/python3 "$HERE/baresip_ctrl.py" 4444 quit > "$D/b/ctrl_quit.txt"
wait $BP; echo "baresip exit $?"
stop_linphonec

[ -n "$KP" ] && { kill $KP; wait $KP; }
sleep 1; kill $DC; wait $DC
for x in a b; do
  /usr/bin/python3 "$HERE/analyze_wav.py" "$D/$x"/baresip/dump-*-dec.wav "$D/$x/linphone/rec.wav"
done
/usr/bin/python3 "$HERE/extract_sdp.py" "$D/sip.pcapng" "$D/sdp"
