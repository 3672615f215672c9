//! The microphone and the speaker, through cpal (feature `devices`, which links ALSA on
//! Linux and is off by default: a call bot or a server needs neither).
//!
//! A [`Microphone`] is an [`AudioSource`] and a [`Speaker`] an [`AudioSink`], so either
//! plugs into a call like a WAV file or a tone. The device runs at its own rate on its own
//! thread (cpal's callback); between it and the call's 20 ms frames sits a short queue and
//! a resampler. When the device falls behind or runs ahead, the queue pads with silence or
//! drops the oldest samples rather than drifting.
//!
//! ```no_run
//! use sansip_media::audio::devices::{self, Microphone, Speaker};
//!
//! for d in devices::list()? {
//!     println!("{}: {} (in: {}, out: {})", d.name, d.description, d.input, d.output);
//! }
//! let mic = Microphone::open(None)?; // the default input
//! let speaker = Speaker::open(Some("null"))?; // ALSA's sink that discards everything
//! # Ok::<(), sansip_media::audio::devices::DeviceError>(())
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::{AudioFrame, AudioSink, AudioSource, Resampler};

/// The most a queue holds, in seconds of the device's audio: beyond it the oldest goes.
const QUEUE_SECONDS: u32 = 1;

/// Why a device could not be listed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No device by that name (or no default one).
    #[error("no audio device {0:?}")]
    NotFound(String),
    /// The device takes no 16-bit or float samples.
    #[error("audio device {0:?} takes no 16-bit or float samples")]
    Format(String),
    /// The audio backend refused.
    #[error("audio device: {0}")]
    Backend(String),
}

fn backend(e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Backend(e.to_string())
}

/// A device the host offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The name to open it by: the backend's identifier (ALSA's PCM name: `null`,
    /// `default`, `hw:0,0`…).
    pub name: String,
    /// What the backend says it is.
    pub description: String,
    /// It can record.
    pub input: bool,
    /// It can play.
    pub output: bool,
}

/// Every device of the default host (ALSA on Linux).
pub fn list() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal::default_host();
    let devices = host.devices().map_err(backend)?;
    Ok(devices
        .map(|d| DeviceInfo {
            name: name_of(&d),
            description: d.to_string(),
            input: d.supports_input(),
            output: d.supports_output(),
        })
        .collect())
}

fn name_of(d: &cpal::Device) -> String {
    d.id()
        .map_or_else(|_| d.to_string(), |id| id.id().to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

fn find(name: Option<&str>, direction: Direction) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let wanted = name.unwrap_or("default").to_string();
    let found = match (name, direction) {
        (None, Direction::Input) => host.default_input_device(),
        (None, Direction::Output) => host.default_output_device(),
        (Some(n), _) => host.devices().map_err(backend)?.find(|d| name_of(d) == n),
    };
    found.ok_or(DeviceError::NotFound(wanted))
}

/// Samples between the device's thread and the call's, at the device's rate, mono.
#[derive(Debug)]
struct Queue {
    samples: VecDeque<i16>,
    limit: usize,
}

impl Queue {
    fn push(&mut self, samples: impl IntoIterator<Item = i16>) {
        self.samples.extend(samples);
        let excess = self.samples.len().saturating_sub(self.limit);
        self.samples.drain(..excess);
    }
}

/// The stream lives on a thread of its own (cpal's streams need not be `Send`), until the
/// flag says stop.
struct Running {
    stop: Arc<AtomicBool>,
    rate: u32,
    queue: Arc<Mutex<Queue>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn start(name: Option<&str>, direction: Direction) -> Result<Running, DeviceError> {
    let name = name.map(str::to_string);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("sansip-audio-device".into())
        .spawn(move || {
            let stream = match open_stream(name.as_deref(), direction) {
                Ok((stream, rate, queue)) => {
                    let _ = tx.send(Ok((rate, queue)));
                    stream
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(stream);
        })
        .map_err(backend)?;
    let (rate, queue) = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| DeviceError::Backend("the device did not start".into()))??;
    Ok(Running { stop, rate, queue })
}

type Opened = (cpal::Stream, u32, Arc<Mutex<Queue>>);

fn open_stream(name: Option<&str>, direction: Direction) -> Result<Opened, DeviceError> {
    let device = find(name, direction)?;
    let label = name_of(&device);
    let supported = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(backend)?;
    let format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    let rate = config.sample_rate;
    let channels = usize::from(config.channels.max(1));
    let queue = Arc::new(Mutex::new(Queue {
        samples: VecDeque::new(),
        limit: (rate * QUEUE_SECONDS) as usize,
    }));
    let q = queue.clone();
    let on_error = |e: cpal::Error| tracing::warn!(error = %e, "audio device error");
    let stream = match (direction, format) {
        (Direction::Input, cpal::SampleFormat::I16) => device.build_input_stream(
            config,
            move |data: &[i16], _: &_| record(&q, data.chunks(channels).map(|f| f[0])),
            on_error,
            None,
        ),
        (Direction::Input, cpal::SampleFormat::F32) => device.build_input_stream(
            config,
            move |data: &[f32], _: &_| record(&q, data.chunks(channels).map(|f| to_i16(f[0]))),
            on_error,
            None,
        ),
        (Direction::Output, cpal::SampleFormat::I16) => device.build_output_stream(
            config,
            move |data: &mut [i16], _: &_| play(&q, data, channels, |s| s),
            on_error,
            None,
        ),
        (Direction::Output, cpal::SampleFormat::F32) => device.build_output_stream(
            config,
            move |data: &mut [f32], _: &_| play(&q, data, channels, |s| f32::from(s) / 32_768.0),
            on_error,
            None,
        ),
        _ => return Err(DeviceError::Format(label)),
    }
    .map_err(backend)?;
    stream.play().map_err(backend)?;
    Ok((stream, rate, queue))
}

fn to_i16(s: f32) -> i16 {
    (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn record(queue: &Mutex<Queue>, samples: impl Iterator<Item = i16>) {
    if let Ok(mut q) = queue.lock() {
        q.push(samples);
    }
}

fn play<T: Copy>(queue: &Mutex<Queue>, out: &mut [T], channels: usize, conv: impl Fn(i16) -> T) {
    let Ok(mut q) = queue.lock() else {
        return;
    };
    for frame in out.chunks_mut(channels) {
        // Starved: silence.
        let s = conv(q.samples.pop_front().unwrap_or(0));
        frame.fill(s);
    }
}

/// A microphone as a call's audio source.
pub struct Microphone {
    running: Running,
    resampler: Option<Resampler>,
    raw: Vec<i16>,
    converted: VecDeque<i16>,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microphone")
            .field("rate", &self.running.rate)
            .finish_non_exhaustive()
    }
}

impl Microphone {
    /// Starts recording from the input device `name` (`None`: the default one).
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        Ok(Self {
            running: start(name, Direction::Input)?,
            resampler: None,
            raw: Vec::new(),
            converted: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// The device's sample rate.
    pub fn rate(&self) -> u32 {
        self.running.rate
    }
}

impl AudioSource for Microphone {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let from = self.running.rate;
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.rates() != (from, rate))
        {
            self.resampler = Some(Resampler::new(from, rate));
            self.converted.clear();
        }
        // What the device recorded since the last frame, converted to the call's rate.
        self.raw.clear();
        if let Ok(mut q) = self.running.queue.lock() {
            self.raw.extend(q.samples.drain(..));
        }
        if let Some(r) = self.resampler.as_mut() {
            self.scratch.clear();
            r.process(&self.raw, &mut self.scratch);
            self.converted.extend(self.scratch.iter().copied());
        }
        // Keep at most a few frames queued: a microphone must not add delay.
        let excess = self.converted.len().saturating_sub(out.len() * 3);
        self.converted.drain(..excess);
        for s in out.iter_mut() {
            *s = self.converted.pop_front().unwrap_or(0);
        }
        true
    }
}

/// A speaker as a call's audio sink.
pub struct Speaker {
    running: Running,
    resampler: Option<Resampler>,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("rate", &self.running.rate)
            .finish_non_exhaustive()
    }
}

impl Speaker {
    /// Starts playing to the output device `name` (`None`: the default one).
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        Ok(Self {
            running: start(name, Direction::Output)?,
            resampler: None,
            scratch: Vec::new(),
        })
    }

    /// The device's sample rate.
    pub fn rate(&self) -> u32 {
        self.running.rate
    }

    /// Samples waiting to be played, at the device's rate.
    pub fn queued(&self) -> usize {
        self.running.queue.lock().map_or(0, |q| q.samples.len())
    }
}

impl AudioSink for Speaker {
    fn write(&mut self, frame: &AudioFrame) {
        let to = self.running.rate;
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.rates() != (frame.rate, to))
        {
            self.resampler = Some(Resampler::new(frame.rate, to));
        }
        self.scratch.clear();
        if let Some(r) = self.resampler.as_mut() {
            r.process(&frame.samples, &mut self.scratch);
        }
        if let Ok(mut q) = self.running.queue.lock() {
            q.push(self.scratch.iter().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_keeps_only_its_limit() {
        let mut q = Queue {
            samples: VecDeque::new(),
            limit: 4,
        };
        q.push([1, 2, 3]);
        q.push([4, 5, 6]);
        assert_eq!(q.samples, [3, 4, 5, 6]);
        let q = Mutex::new(q);
        let mut out = [9i16; 12];
        play(&q, &mut out, 2, |s| s);
        assert_eq!(out, [3, 3, 4, 4, 5, 5, 6, 6, 0, 0, 0, 0], "then silence");
    }

    #[test]
    fn an_unknown_device_is_a_typed_error() {
        match Speaker::open(Some("no such device, surely")) {
            Err(DeviceError::NotFound(name)) => assert_eq!(name, "no such device, surely"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened"),
        }
    }
}
