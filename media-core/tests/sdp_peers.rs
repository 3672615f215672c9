//! The SDP glue on real offers captured from real peers (`tests/sdp/`, see its README):
//! every DTLS-SRTP offer is answered with one m-line per offered line, in order, with the
//! offered transport echoed and rejected lines at port 0; plain RTP and SDES offers are
//! answered in kind, and what we cannot take is refused with a reason fit for a 488's
//! Warning.
#![cfg(feature = "rtc")]
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use sansip_media::core::session::sdp::directions;
use sansip_media::core::session::{Direction, SdpError, SdpHandler};
use sansip_media::sdp::mids;
use sansip_media::{MediaConfig, RtcSession, SessionTemplate};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn session(video: bool) -> RtcSession {
    let config = MediaConfig {
        video,
        ..MediaConfig::default()
    };
    let template = SessionTemplate::new(config, vec!["127.0.0.1:40000".parse().unwrap()]).unwrap();
    RtcSession::new(origin(), &template)
}

/// `(media, port, proto)` of every m-line.
fn mlines(sdp: &str) -> Vec<(String, String, String)> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("m="))
        .map(|m| {
            let w: Vec<&str> = m.split_whitespace().collect();
            (w[0].to_string(), w[1].to_string(), w[2].to_string())
        })
        .collect()
}

/// Answers `name` and checks RFC 3264 §6's shape; returns the answer.
fn answer(name: &str, video: bool, direction: Direction) -> String {
    let offer = fixture(name);
    let offer_text = String::from_utf8(offer.clone()).unwrap();
    let answer = session(video)
        .accept_offer(&offer, direction)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    let (offered, answered) = (mlines(&offer_text), mlines(&answer));
    assert_eq!(
        offered.len(),
        answered.len(),
        "{name}: m-line count\n{answer}"
    );
    for (o, a) in offered.iter().zip(&answered) {
        assert_eq!(o.0, a.0, "{name}: media order\n{answer}");
        assert_eq!(
            o.2, a.2,
            "{name}: the offered transport is echoed\n{answer}"
        );
    }
    // A DTLS-SRTP offer gets DTLS-SRTP and ICE back.
    if offer_text.contains("a=fingerprint:") {
        assert!(answer.contains("a=fingerprint:"), "{name}: {answer}");
        assert!(answer.contains("a=ice-ufrag:"), "{name}: {answer}");
    }
    answer
}

fn accepted(answer: &str) -> Vec<String> {
    mlines(answer)
        .into_iter()
        .filter(|m| m.1 != "0")
        .map(|m| m.0)
        .collect()
}

#[test]
fn chromium_sipjs_offer_is_answered_with_opus() {
    let a = answer("chromium_sipjs_offer.sdp", false, Direction::SendRecv);
    assert_eq!(accepted(&a), ["audio"]);
    assert!(a.contains("opus/48000"), "{a}");
    assert!(a.contains("telephone-event/48000"), "{a}");
    assert_eq!(directions(&a), [Some(Direction::SendRecv)]);
}

#[test]
fn chromium_hold_offer_gets_the_direction_we_are_told() {
    let a = answer("chromium_sipjs_hold_offer.sdp", false, Direction::RecvOnly);
    assert_eq!(directions(&a), [Some(Direction::RecvOnly)]);
}

#[test]
fn baresip_without_mid_or_bundle_and_session_level_ice() {
    let a = answer("baresip_dtls_ice_offer.sdp", false, Direction::SendRecv);
    assert_eq!(accepted(&a), ["audio"]);
    // The offer had no a=mid: the answer's made-up one is harmless, its m-line is what
    // counts.
    assert!(a.contains("a=group:BUNDLE"), "{a}");
}

#[test]
fn baresip_audio_and_video_rejects_video_unless_asked() {
    let a = answer(
        "baresip_dtls_ice_av_rtcpmux_offer.sdp",
        false,
        Direction::SendRecv,
    );
    assert_eq!(accepted(&a), ["audio"]);
    assert_eq!(mlines(&a)[1].1, "0", "video rejected with port 0\n{a}");
    // Even when we take video, baresip numbers VP8 96 like its opus: one payload space
    // (str0m's) cannot hold both, so video is rejected and the call goes on with audio.
    let a = answer(
        "baresip_dtls_ice_av_rtcpmux_offer.sdp",
        true,
        Direction::SendRecv,
    );
    assert_eq!(accepted(&a), ["audio"]);
}

#[test]
fn linphone_savp_with_dtls_is_taken_and_echoed() {
    let a = answer("linphone_dtls_offer.sdp", false, Direction::SendRecv);
    assert_eq!(accepted(&a), ["audio"]);
    assert!(
        a.contains("m=audio ") && a.contains("UDP/TLS/RTP/SAVP "),
        "{a}"
    );
}

#[test]
fn linphone_bundle_with_video() {
    // linphone, like baresip, reuses 96 for opus and VP8: audio is kept, video rejected.
    let a = answer(
        "linphone_dtls_bundle_av_offer.sdp",
        true,
        Direction::SendRecv,
    );
    assert_eq!(accepted(&a), ["audio"]);
    assert!(a.contains("a=mid:as") && a.contains("a=mid:vs"), "{a}");
}

#[test]
fn video_is_offered_and_accepted_between_our_phones() {
    let (mut a, mut b) = (session(true), session(true));
    let offer = a.create_offer(Direction::SendRecv).unwrap();
    let offer_text = String::from_utf8(offer.to_vec()).unwrap();
    assert!(offer_text.contains("VP8/90000") && offer_text.contains("H264/90000"));
    let answer = b.accept_offer(&offer, Direction::SendRecv).unwrap();
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    assert_eq!(accepted(&answer), ["audio", "video"]);
    a.accept_answer(answer.as_bytes()).unwrap();
    // A phone without video answers the same offer with the video line rejected.
    let answer = session(false)
        .accept_offer(&offer, Direction::SendRecv)
        .unwrap();
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    assert_eq!(mlines(&answer).len(), 2);
    assert_eq!(accepted(&answer), ["audio"]);
}

#[test]
fn asterisk_rtp_savpf_with_dtls() {
    let a = answer("asterisk_webrtc_offer.sdp", false, Direction::SendRecv);
    assert_eq!(accepted(&a), ["audio"]);
}

#[test]
fn freeswitch_without_mid_or_direction() {
    for name in [
        "freeswitch_webrtc_offer.sdp",
        "freeswitch_webrtc_offer_2017.sdp",
    ] {
        let a = answer(name, false, Direction::SendRecv);
        assert_eq!(accepted(&a), ["audio"], "{name}");
        assert_eq!(directions(&a), [Some(Direction::SendRecv)], "{name}");
    }
}

#[test]
fn plain_rtp_and_sdes_offers_are_answered_in_kind() {
    for (name, proto, crypto) in [
        ("baresip_rtp_avp_offer.sdp", "RTP/AVP", None),
        (
            "baresip_sdes_offer.sdp",
            "RTP/SAVP",
            Some("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        ),
    ] {
        let answer = answer(name, false, Direction::SendRecv);
        let m = answer
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .unwrap_or_default();
        assert!(
            m.starts_with(&format!("m=audio 40000 {proto} ")),
            "{name}: {answer}"
        );
        assert!(
            answer.contains("c=IN IP4 127.0.0.1\r\n"),
            "{name}: {answer}"
        );
        assert!(!answer.contains("a=fingerprint") && !answer.contains("a=candidate"));
        match crypto {
            Some(line) => assert!(answer.contains(line), "{name}: {answer}"),
            None => assert!(!answer.contains("a=crypto"), "{name}: {answer}"),
        }
        // The offer's codecs we do, in our order (Opus, G.722, PCMU, PCMA); baresip's
        // telephone-event is at 8 kHz, which does not go with Opus.
        let formats: Vec<&str> = m.split_whitespace().skip(3).collect();
        assert_eq!(formats, ["96", "9", "0", "8"], "{name}: {m}");
    }
}

#[test]
fn plain_offers_we_cannot_take_are_refused_with_a_reason() {
    let head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";
    for (offer, why) in [
        (
            format!("{head}m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"),
            "no audio codec in common",
        ),
        (
            format!(
                "{head}m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 \
                 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n"
            ),
            "a=crypto",
        ),
        (format!("{head}m=audio 4000 RTP/SAVP 0\r\n"), "a=crypto"),
    ] {
        match session(false).accept_offer(offer.as_bytes(), Direction::SendRecv) {
            Err(SdpError::Incompatible(reason)) => {
                assert!(reason.contains(why), "{offer}: {reason}")
            }
            other => panic!("{offer}: {other:?}"),
        }
    }
}

#[test]
fn garbage_is_refused_without_panicking() {
    for body in [
        &b""[..],
        b"hello",
        b"v=0\r\n",
        b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n",
        b"\xff\xfe",
        b"v=0\r\nm=\r\nm=audio\r\nm=audio x\r\n",
    ] {
        assert!(
            session(false)
                .accept_offer(body, Direction::SendRecv)
                .is_err()
        );
    }
}

#[test]
fn our_offer_is_taken_by_our_answerer_and_hold_round_trips() {
    let (mut a, mut b) = (session(false), session(false));
    let offer = a.create_offer(Direction::SendRecv).unwrap();
    let answer = b.accept_offer(&offer, Direction::SendRecv).unwrap();
    a.accept_answer(&answer).unwrap();
    assert_eq!(a.direction(), Direction::SendRecv);
    // Hold: a re-offer with only the direction changed, and the next o= version.
    let hold = a.create_offer(Direction::SendOnly).unwrap();
    let hold = String::from_utf8(hold.to_vec()).unwrap();
    assert_eq!(directions(&hold), [Some(Direction::SendOnly)]);
    assert!(
        hold.lines()
            .any(|l| l.starts_with("o=") && l.split(' ').nth(2) == Some("2")),
        "{hold}"
    );
    let held = b
        .accept_offer(hold.as_bytes(), Direction::RecvOnly)
        .unwrap();
    a.accept_answer(&held).unwrap();
    assert_eq!(
        (a.direction(), b.direction()),
        (Direction::SendOnly, Direction::RecvOnly)
    );
    // A refused re-offer rolls back to what was negotiated.
    a.create_offer(Direction::Inactive).unwrap();
    a.rollback();
    assert_eq!(a.direction(), Direction::SendOnly);
}

#[test]
fn a_re_offer_without_mid_keeps_the_mid_of_its_position() {
    // SIPp-style: the peer's re-INVITE (a hold) says neither a=mid nor BUNDLE, while our
    // first offer named its m-line with str0m's own mid.
    let (mut a, mut b) = (session(false), session(false));
    let offer = a.create_offer(Direction::SendRecv).unwrap();
    let answer = b.accept_offer(&offer, Direction::SendRecv).unwrap();
    a.accept_answer(&answer).unwrap();
    let reoffer: String = String::from_utf8(answer.to_vec())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("a=mid:") && !l.starts_with("a=group:"))
        .map(|l| match l {
            "a=sendrecv" => "a=sendonly\r\n".to_string(),
            l if l.starts_with("a=setup:") => "a=setup:actpass\r\n".to_string(),
            l => format!("{l}\r\n"),
        })
        .collect();
    let reanswer = a
        .accept_offer(reoffer.as_bytes(), Direction::RecvOnly)
        .unwrap();
    assert_eq!(
        directions(std::str::from_utf8(&reanswer).unwrap()),
        [Some(Direction::RecvOnly)]
    );
}

/// The `c=` address and m-line port of each m-line (RFC 8839 §4.2.1.2's default candidate).
fn defaults(sdp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut port = None;
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            port = m.split(' ').nth(1).map(str::to_string);
        } else if let (Some(c), Some(p)) = (line.strip_prefix("c=IN IP4 "), port.take()) {
            out.push(format!("{c}:{p}"));
        }
    }
    out
}

#[test]
fn offers_and_answers_name_their_default_candidate_and_do_not_promise_trickle() {
    // baresip and linphone answer a=ice-mismatch to c=0.0.0.0 / port 9 (issue 13 §0).
    let offer = session(false).create_offer(Direction::SendRecv).unwrap();
    let offer = String::from_utf8(offer.to_vec()).unwrap();
    assert_eq!(defaults(&offer), ["127.0.0.1:40000"], "{offer}");
    assert!(offer.contains(" 127.0.0.1 40000 typ host"), "{offer}");
    assert!(
        !offer.contains("trickle") && !offer.contains("0.0.0.0"),
        "{offer}"
    );
    for peer in [
        "baresip_dtls_ice_offer.sdp",
        "linphone_dtls_offer.sdp",
        "chromium_sipjs_offer.sdp",
    ] {
        let a = answer(peer, false, Direction::SendRecv);
        assert_eq!(defaults(&a), ["127.0.0.1:40000"], "{peer}: {a}");
        assert!(
            !a.contains("trickle") && !a.contains("0.0.0.0"),
            "{peer}: {a}"
        );
    }
    // A rejected m-line keeps port 0.
    let a = answer(
        "baresip_dtls_ice_av_rtcpmux_offer.sdp",
        false,
        Direction::SendRecv,
    );
    assert_eq!(mlines(&a)[1].1, "0", "{a}");
}

#[test]
fn baresip_and_linphone_answers_to_our_offer_are_taken() {
    // Captured in `runtime-tokio/softphone/tests/peers.rs`: each peer's 200 to our INVITE.
    // The mid linphone echoes is the one that call's offer had: it becomes this offer's.
    for name in [
        "baresip_dtls_ice_answer_to_sansip.sdp",
        "linphone_dtls_ice_answer_to_sansip.sdp",
    ] {
        let mut a = session(false);
        let offer = a.create_offer(Direction::SendRecv).unwrap();
        let mid = mids(&String::from_utf8_lossy(&offer))[0].clone().unwrap();
        let answer = String::from_utf8(fixture(name)).unwrap();
        let answer = match mids(&answer)[0].clone() {
            Some(theirs) => answer.replace(&theirs, &mid),
            None => answer,
        };
        a.accept_answer(answer.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.direction(), Direction::SendRecv, "{name}");
        assert!(!answer.contains("ice-mismatch"), "{name}");
    }
}
