//! Video as pre-encoded frames (VP8, H264): sansip carries them, it does not encode or
//! decode. IVF files (the container `ffmpeg -c:v libvpx -f ivf` writes) give a simple way in
//! and out.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// A video codec frames can be carried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 (RFC 6184).
    H264,
}

impl VideoCodec {
    /// The IVF FourCC.
    pub const fn fourcc(self) -> [u8; 4] {
        match self {
            VideoCodec::Vp8 => *b"VP80",
            VideoCodec::H264 => *b"H264",
        }
    }
}

/// One encoded video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Its codec.
    pub codec: VideoCodec,
    /// Its presentation time on the 90 kHz RTP clock.
    pub rtp_time: u64,
    /// The encoded frame.
    pub data: Vec<u8>,
}

impl VideoFrame {
    /// Whether the frame decodes on its own: a VP8 key frame (RFC 6386 §9.1: bit 0 of the
    /// frame tag is 0), or an H.264 access unit with an IDR slice (NAL type 5) in Annex B
    /// or with a bare first NAL unit.
    pub fn is_keyframe(&self) -> bool {
        match self.codec {
            VideoCodec::Vp8 => self.data.first().is_some_and(|b| b & 1 == 0),
            VideoCodec::H264 => {
                let idr = |nal: u8| nal & 0x1f == 5;
                self.data.first().is_some_and(|&b| b != 0 && idr(b))
                    || self
                        .data
                        .windows(4)
                        .any(|w| w[..3] == [0, 0, 1] && idr(w[3]))
            }
        }
    }
}

/// Where a call's received video frames go.
pub trait VideoSink: Send {
    /// Takes one frame.
    fn write(&mut self, frame: &VideoFrame);
    /// The call is over.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const IVF_HEADER: usize = 32;

/// Writes frames to an IVF file (frame count and timestamps on a 90 kHz time base).
pub struct IvfWriter {
    out: Option<BufWriter<File>>,
    frames: u32,
    first: Option<u64>,
}

impl std::fmt::Debug for IvfWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfWriter")
            .field("frames", &self.frames)
            .finish()
    }
}

impl IvfWriter {
    /// Creates `path` for `codec` frames of `width`×`height`.
    pub fn create(
        path: impl AsRef<Path>,
        codec: VideoCodec,
        width: u16,
        height: u16,
    ) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut h = [0u8; IVF_HEADER];
        h[0..4].copy_from_slice(b"DKIF");
        h[6..8].copy_from_slice(&(IVF_HEADER as u16).to_le_bytes());
        h[8..12].copy_from_slice(&codec.fourcc());
        h[12..14].copy_from_slice(&width.to_le_bytes());
        h[14..16].copy_from_slice(&height.to_le_bytes());
        h[16..20].copy_from_slice(&90_000u32.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out: Some(out),
            frames: 0,
            first: None,
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }
}

impl VideoSink for IvfWriter {
    fn write(&mut self, frame: &VideoFrame) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let first = *self.first.get_or_insert(frame.rtp_time);
        let pts = frame.rtp_time.saturating_sub(first);
        let ok = out
            .write_all(&(frame.data.len() as u32).to_le_bytes())
            .and_then(|()| out.write_all(&pts.to_le_bytes()))
            .and_then(|()| out.write_all(&frame.data));
        if ok.is_err() {
            tracing::warn!("ivf write failed; video recording stopped");
            self.out = None;
            return;
        }
        self.frames += 1;
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        // The frame count lives in the header.
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(24))?;
        file.write_all(&self.frames.to_le_bytes())?;
        file.flush()
    }
}

impl Drop for IvfWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Reads frames from an IVF file.
#[derive(Debug)]
pub struct IvfReader {
    input: BufReader<File>,
    codec: VideoCodec,
    /// Time base: `num`/`den` seconds per timestamp unit.
    den: u32,
    num: u32,
}

impl IvfReader {
    /// Opens `path` and reads its header.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut input = BufReader::new(File::open(path)?);
        let mut h = [0u8; IVF_HEADER];
        input.read_exact(&mut h)?;
        if &h[0..4] != b"DKIF" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an IVF file",
            ));
        }
        let codec = match &h[8..12] {
            b"VP80" => VideoCodec::Vp8,
            b"H264" => VideoCodec::H264,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unsupported IVF codec {:?}", String::from_utf8_lossy(other)),
                ));
            }
        };
        let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let header_len = usize::from(u16::from_le_bytes([h[6], h[7]]));
        if header_len > IVF_HEADER {
            let mut skip = vec![0u8; header_len - IVF_HEADER];
            input.read_exact(&mut skip)?;
        }
        Ok(Self {
            input,
            codec,
            den: le32(&h[16..20]).max(1),
            num: le32(&h[20..24]).max(1),
        })
    }

    /// The file's codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The next frame (its time converted to the 90 kHz clock), or `None` at the end.
    pub fn next_frame(&mut self) -> io::Result<Option<VideoFrame>> {
        let mut fh = [0u8; 12];
        match self.input.read_exact(&mut fh) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        if len > 16 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "frame too large",
            ));
        }
        let pts = u64::from_le_bytes([fh[4], fh[5], fh[6], fh[7], fh[8], fh[9], fh[10], fh[11]]);
        let mut data = vec![0u8; len];
        self.input.read_exact(&mut data)?;
        let rtp_time = pts * 90_000 * u64::from(self.num) / u64::from(self.den);
        Ok(Some(VideoFrame {
            codec: self.codec,
            rtp_time,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivf_round_trip() {
        let path = std::env::temp_dir().join(format!("sansip-{}.ivf", std::process::id()));
        let mut w = IvfWriter::create(&path, VideoCodec::Vp8, 320, 240).unwrap();
        for i in 0..3u64 {
            w.write(&VideoFrame {
                codec: VideoCodec::Vp8,
                rtp_time: 1_000 + i * 3_000,
                data: vec![i as u8; 10 + i as usize],
            });
        }
        w.finish().unwrap();
        let mut r = IvfReader::open(&path).unwrap();
        assert_eq!(r.codec(), VideoCodec::Vp8);
        for i in 0..3u64 {
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!(f.rtp_time, i * 3_000);
            assert_eq!(f.data, vec![i as u8; 10 + i as usize]);
        }
        assert!(r.next_frame().unwrap().is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
