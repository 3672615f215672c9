//! The microphone and speaker (feature `devices`) on ALSA's `null` device, which every
//! ALSA installation has: it records silence and discards what it plays, at the device's
//! own pace. `cargo test -p sansip-media --features devices --test devices`.
#![cfg(feature = "devices")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sansip_media::audio::devices::{self, DeviceError, Microphone, Speaker};
use sansip_media::audio::{AudioFrame, AudioSink, AudioSource};

#[test]
fn the_null_device_is_listed_both_ways() {
    let all = devices::list().unwrap();
    let null = all
        .iter()
        .find(|d| d.name == "null")
        .unwrap_or_else(|| panic!("no ALSA null device in {all:?}"));
    assert!(null.input && null.output, "{null:?}");
}

#[test]
fn the_speaker_plays_at_the_device_pace_and_the_microphone_records_silence() {
    let mut speaker = Speaker::open(Some("null")).unwrap();
    // 200 ms of a 16 kHz tone, resampled to the device's rate, queued at once.
    for _ in 0..10 {
        speaker.write(&AudioFrame {
            rate: 16_000,
            samples: vec![1_000; 320],
        });
    }
    let queued = speaker.queued();
    assert!(queued > 0, "nothing queued at {} Hz", speaker.rate());
    // The device takes it away on its own thread.
    for _ in 0..150 {
        if speaker.queued() < queued {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(speaker.queued() < queued, "the device played nothing");

    let mut mic = Microphone::open(Some("null")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut frame = vec![7i16; 160];
    assert!(mic.fill(8_000, &mut frame));
    assert!(frame.iter().all(|&s| s == 0), "null records silence");
}

#[test]
fn a_missing_device_is_a_typed_error() {
    assert!(matches!(
        Microphone::open(Some("no-such-device")),
        Err(DeviceError::NotFound(_))
    ));
}
