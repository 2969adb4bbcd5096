//! A stand-in camera for the simulated-time tests and `hawker bench video`: a 30 fps H.264
//! stream (SPS, PPS and an IDR slice for a keyframe, one slice otherwise) and Opus-sized audio,
//! written to a str0m peer. The bytes are not a decodable picture; the SFU never decodes.

use std::time::Instant;

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid};

/// One Annex-B access unit of `len` bytes or a little more.
pub fn h264_access_unit(keyframe: bool, len: usize, fill: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    if keyframe {
        out.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x01, 0x40]);
        out.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        out.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        out.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    out.resize(out.len().max(len), fill);
    out
}

/// Writes frame `n` of the stream: `video_len` bytes of H.264 on `video` and 20 ms-sized audio
/// on `audio`, both timed as the `n`th 33 ms step.
pub fn write_frame(
    rtc: &mut Rtc,
    (video, audio): (Mid, Mid),
    n: u64,
    keyframe: bool,
    video_len: usize,
    now: Instant,
) -> Result<(), String> {
    let fill = (n % 200) as u8 + 1;
    if let Some(w) = rtc.writer(video) {
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::H264)
            .map(|p| p.pt())
            .ok_or("no H.264 payload type negotiated")?;
        let frame = h264_access_unit(keyframe, video_len, fill);
        w.write(pt, now, MediaTime::from_90khz(n * 3000), frame)
            .map_err(|e| e.to_string())?;
    }
    if let Some(w) = rtc.writer(audio) {
        let pt = w
            .payload_params()
            .next()
            .map(|p| p.pt())
            .ok_or("no audio payload type negotiated")?;
        let t = MediaTime::new(n * 1584, Frequency::FORTY_EIGHT_KHZ);
        w.write(pt, now, t, vec![0xf8u8; 100])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
